package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
)

// A Share lets many local clients share one upstream connection (sockmux
// share): what the upstream sends goes to every client, what any client
// sends goes upstream, one read of a client socket at a time, never
// interleaved with another client's bytes.
//
// Three kinds of actor do the work, on a Node of their own:
//
//   - the hub (one per Share) owns the client set, the replay ring and the
//     drop counters. It accepts clients, and hands every chunk the upstream
//     sends to each client's queue. A full queue holds the upstream's
//     reader until the client drains it, for up to the slow timeout
//     (SlowWait), or its oldest bytes are dropped and counted (SlowDrop),
//     or its client is disconnected (SlowDisconnect);
//   - a client actor (one per client socket) owns the socket: its reader
//     goroutine sends what the client writes to the upstream actor, one
//     pooled buffer per read, while the input waiting for the upstream is
//     under its bound; its writer goroutine drains the client's queue;
//   - the upstream actor owns the upstream connection: it dials (redialling
//     with backoff when it drops, while the clients stay connected), reads
//     into pooled buffers for the hub while the upstreamGate lets it, and
//     writes the clients' chunks, each whole, in the order they came.
//
// A chunk from the upstream goes to every client without being copied: it
// is a sharedBuf counting the clients that still hold it, and the last to
// let go (after its write, or when dropping it) returns it to the pool.
type Share struct {
	node  *Node
	ln    net.Listener
	hub   *actor.PID
	state *shareState
	gate  *upstreamGate
	once  sync.Once
}

// ShareConfig is what a Share needs.
type ShareConfig struct {
	// Logger receives the share's logs (clients joining and leaving, the
	// upstream going up and down, drops).
	Logger *slog.Logger
	// Listen is the host:port clients connect to ("127.0.0.1:0" picks a
	// port; Addr tells which).
	Listen string
	// Upstream is what the clients share (see ParseUpstream).
	Upstream string
	// CarrierOptions configure the upstream's dialer: the TLS of a
	// tunnel's link, for instance.
	CarrierOptions []carriers.Option
	// ClientBuffer bounds, per client, the bytes from the upstream waiting
	// to be written to it (1 MiB, defaultClientBuffer, when 0). One read
	// of the upstream (at most 64 KiB) always fits an empty queue; the one
	// write in progress, at most shareWriteBatch bytes, is beside it. Under
	// SlowWait a full queue pauses the upstream, and what was already read
	// (at most shareInflight bytes) is queued beyond the bound.
	ClientBuffer int
	// Slow says what happens to a client whose queue is full: SlowWait
	// (the zero value) holds the upstream for it, "drop" (ParseSlowPolicy)
	// drops its oldest bytes, "disconnect" closes it.
	Slow SlowPolicy
	// SlowTimeout is, under SlowWait, how long a client's queue may stay
	// full (until it drains to half of ClientBuffer) before the client is
	// disconnected (DefaultSlowTimeout when 0).
	SlowTimeout time.Duration
	// Replay is how many of the last bytes the upstream sent a new client
	// receives first (0: none). It may not exceed ClientBuffer.
	Replay int
	// inputBuffer bounds the clients' bytes waiting for the upstream, all
	// clients together (defaultInputBuffer when 0): past it the clients'
	// sockets are not read, and TCP pushes back on them.
	inputBuffer int
	// backoff is the first delay before redialling an upstream that
	// dropped or could not be dialled (1 s when 0); it doubles up to
	// maxBackoff (30 s when 0), with jitter, and starts again at backoff
	// once the upstream is up. A fifo: upstream whose far end went away is
	// reopened at once: the open waits for the far end to come back.
	backoff, maxBackoff time.Duration
	// dropLogInterval is how often the drops of a client that keeps
	// dropping are logged (5 s when 0).
	dropLogInterval time.Duration
	// Node configures the node a tunnel: upstream's link runs on (its key,
	// keepalive, ...); its Logger is Logger.
	Node Config
	// DialUpstream, when set, is how the upstream is reached instead of
	// the UPSTREAM's own dialer: the root package's Share gives a tunnel:
	// upstream's streams of a sockmux.Peer of its own here, so that the
	// share is built on the library's API (Peer.DialStream), and Node's
	// link is not made.
	DialUpstream func(ctx context.Context) (net.Conn, error)
}

// Defaults of a Share.
const (
	defaultClientBuffer = 1 << 20
	defaultInputBuffer  = 1 << 20
)

// shareWriteBatch is the most a client's writer takes from its queue for
// one write.
const shareWriteBatch = 256 << 10

// shareChunk is the most one read of a client or of the upstream takes:
// the unit that is kept whole.
const shareChunk = engine.DefaultMaxPayload

// ShareStats are a Share's counters at one moment.
type ShareStats struct {
	Upstream         string             `json:"upstream"` // the UPSTREAM
	UpstreamUp       bool               `json:"upstream_up"`
	UpstreamSessions int64              `json:"upstream_sessions"` // how many times the upstream came up
	UpstreamPaused   bool               `json:"upstream_paused"`   // not read now: a client's buffer is full (SlowWait)
	FromUpstream     int64              `json:"from_upstream"`     // bytes the upstream sent
	ToUpstream       int64              `json:"to_upstream"`       // bytes written to the upstream
	Dropped          int64              `json:"dropped"`           // bytes dropped for slow clients, all clients ever
	SlowDisconnects  int64              `json:"slow_disconnects"`  // clients closed for being slow
	Clients          []ShareClientStats `json:"clients"`
}

// ShareClientStats are one connected client's counters.
type ShareClientStats struct {
	Addr    string    `json:"addr"`
	Joined  time.Time `json:"joined"`
	In      int64     `json:"in"`      // bytes read from the client
	Out     int64     `json:"out"`     // bytes written to the client
	Dropped int64     `json:"dropped"` // bytes dropped because the client was slow
	Queued  int64     `json:"queued"`  // bytes waiting to be written to it
	Full    bool      `json:"full"`    // its buffer is full and holds the upstream (SlowWait)
}

// shareState is what Stats reads; the actors update it.
type shareState struct {
	upstream string
	mu       sync.Mutex
	clients  []*shareClient // connected, in join order

	up              atomic.Bool
	sessions        atomic.Int64
	from, to        atomic.Int64
	dropped         atomic.Int64
	slowDisconnects atomic.Int64
}

// shareClient is the hub's record of one client.
type shareClient struct {
	pid    *actor.PID
	addr   string
	joined time.Time
	q      *outQueue

	in, out, dropped atomic.Int64

	// The hub's own: whether the client dropped since the last report,
	// and what the last report said.
	dropping bool
	reported int64
}

// NewShare listens for clients on cfg.Listen and starts sharing
// cfg.Upstream. An UPSTREAM that does not parse is ErrBadUpstream.
func NewShare(cfg ShareConfig) (*Share, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientBuffer == 0 {
		cfg.ClientBuffer = defaultClientBuffer
	}
	if cfg.inputBuffer == 0 {
		cfg.inputBuffer = defaultInputBuffer
	}
	if cfg.backoff == 0 {
		cfg.backoff = time.Second
	}
	if cfg.maxBackoff == 0 {
		cfg.maxBackoff = 30 * time.Second
	}
	if cfg.dropLogInterval == 0 {
		cfg.dropLogInterval = 5 * time.Second
	}
	if cfg.SlowTimeout == 0 {
		cfg.SlowTimeout = DefaultSlowTimeout
	}
	switch {
	case cfg.ClientBuffer < 0:
		return nil, errors.New("share: the client buffer must be positive")
	case cfg.inputBuffer < 0:
		return nil, errors.New("share: the input buffer must be positive")
	case cfg.Slow < SlowWait || cfg.Slow > SlowDisconnect:
		return nil, fmt.Errorf("share: unknown slow-client policy %d", cfg.Slow)
	case cfg.SlowTimeout < 0:
		return nil, errors.New("share: the slow timeout must be positive")
	case cfg.Replay < 0:
		return nil, errors.New("share: replay must not be negative")
	case cfg.Replay > cfg.ClientBuffer:
		return nil, fmt.Errorf("share: replay (%d bytes) exceeds the client buffer (%d bytes)", cfg.Replay, cfg.ClientBuffer)
	}
	opts := append([]carriers.Option{carriers.WithLogger(cfg.Logger)}, cfg.CarrierOptions...)
	up, err := ParseUpstream(cfg.Upstream, opts...)
	if err != nil {
		return nil, err
	}
	ncfg := cfg.Node
	ncfg.Logger = cfg.Logger
	ncfg.Forwards, ncfg.OnLink = nil, nil
	node, err := NewNode(ncfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		node.Close()
		return nil, fmt.Errorf("share: listen %s: %w", cfg.Listen, err)
	}
	dial := up.dialer.Dial
	switch {
	case cfg.DialUpstream != nil:
		dial = cfg.DialUpstream
	case up.Kind == "tunnel":
		node.Connect(up.dialer)
		target := up.target
		dial = func(ctx context.Context) (net.Conn, error) { return node.DialStream(ctx, target) }
	}
	e := node.env
	s := &Share{node: node, ln: ln, state: &shareState{upstream: up.String()}}
	hub := &shareHub{env: e, cfg: cfg, up: up, dial: dial, ln: ln, state: s.state,
		clients: make(map[string]*shareClient), win: newInflow(int64(cfg.inputBuffer)),
		gate: newUpstreamGate(), ring: newReplayRing(cfg.Replay)}
	s.gate = hub.gate
	attrs := []any{"listen", ln.Addr().String(), "upstream", up.String(),
		"client_buffer", cfg.ClientBuffer, "slow", cfg.Slow.String()}
	if cfg.Slow == SlowWait {
		attrs = append(attrs, "slow_timeout", cfg.SlowTimeout)
	}
	e.log.Info("share listening", append(attrs, "replay", cfg.Replay)...)
	s.hub = e.sys.Root.Spawn(e.props(func() actor.Actor { return hub }))
	return s, nil
}

// Addr is where clients connect.
func (s *Share) Addr() net.Addr { return s.ln.Addr() }

// Redial makes an upstream that is waiting to redial dial now.
func (s *Share) Redial() { s.node.env.send(s.hub, &redialRequest{}) }

// Stats are the share's counters now.
func (s *Share) Stats() ShareStats {
	st := s.state
	out := ShareStats{
		Upstream: st.upstream, UpstreamUp: st.up.Load(), UpstreamSessions: st.sessions.Load(),
		UpstreamPaused: s.gate.paused(), FromUpstream: st.from.Load(), ToUpstream: st.to.Load(),
		Dropped: st.dropped.Load(), SlowDisconnects: st.slowDisconnects.Load(),
	}
	st.mu.Lock()
	clients := append([]*shareClient(nil), st.clients...)
	st.mu.Unlock()
	for _, c := range clients {
		out.Clients = append(out.Clients, ShareClientStats{
			Addr: c.addr, Joined: c.joined, In: c.in.Load(), Out: c.out.Load(),
			Dropped: c.dropped.Load(), Queued: int64(c.q.queued()), Full: c.q.isFull(),
		})
	}
	return out
}

// Close stops accepting, closes every client and the upstream, and waits
// for every actor and goroutine of the share to end.
func (s *Share) Close() error {
	err := ErrClosed
	s.once.Do(func() {
		s.ln.Close()
		_ = s.node.env.sys.Root.StopFuture(s.hub).Wait()
		err = s.node.Close()
	})
	return err
}

// Share messages. Those holding a buffer or a socket hand it over, and
// free it by their release method when they cannot be delivered.

// shareAccepted is a client the hub's accept loop took.
type shareAccepted struct{ conn net.Conn }

func (m *shareAccepted) release() { m.conn.Close() }

// upstreamData is one read of the upstream, for the hub.
type upstreamData struct{ buf *engine.Buffer }

func (m *upstreamData) release() { engine.PutBuffer(m.buf) }

// upstreamStatus tells the hub the upstream went up or down.
type upstreamStatus struct{ up bool }

// clientInput is one read of a client socket, for the upstream actor.
type clientInput struct{ buf *engine.Buffer }

func (m *clientInput) release() { engine.PutBuffer(m.buf) }

// clientLeft tells the hub a client is gone, and why; the hub stops its
// actor.
type clientLeft struct {
	pid    *actor.PID
	reason string
}

// clientIOEnd tells a client actor its reader or writer ended.
type clientIOEnd struct {
	err   error
	write bool
}

// upstreamIOEnd tells the upstream actor a session's reader or writer
// ended; upstreamIOExit that one of its goroutines is gone.
type upstreamIOEnd struct {
	gen   uint64
	err   error
	write bool
}
type upstreamIOExit struct{ gen uint64 }

// dropReport asks the hub to log the drops since the last report.
type dropReport struct{}

// shareHub owns the client set, the replay ring and the drop counters.
type shareHub struct {
	env     *env
	cfg     ShareConfig
	up      *Upstream
	dial    dialFunc
	ln      net.Listener
	state   *shareState
	self    *actor.PID
	closing bool
	stop    chan struct{} // closed on Stopping: ends the accept loop's backoff

	upstream *actor.PID
	clients  map[string]*shareClient // by actor id
	win      *inflow
	gate     *upstreamGate
	ring     *replayRing
	report   *time.Timer
}

func (h *shareHub) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *upstreamData:
		h.broadcast(ctx, m.buf)
	case *shareAccepted:
		h.join(ctx, m.conn)
	case *clientLeft:
		if c := h.clients[m.pid.Id]; c != nil {
			ctx.Stop(c.pid)
			h.leave(c, m.reason)
		}
	case *upstreamStatus:
		h.state.up.Store(m.up)
		if m.up {
			h.state.sessions.Add(1)
		}
	case *slowStuck:
		h.stuck(ctx, m)
	case *dropReport:
		h.reportDrops()
	case *redialRequest:
		ctx.Send(h.upstream, m)
	case *actor.Terminated:
		if c := h.clients[m.Who.Id]; c != nil {
			reason := "client actor stopped"
			if h.closing {
				reason = "share closing"
			}
			h.leave(c, reason)
		} else if h.upstream != nil && m.Who.Equal(h.upstream) && !h.closing {
			h.env.log.Error("share upstream actor stopped; closing the share's listener", "upstream", h.up.String())
			h.ln.Close()
		}
	case *actor.Started:
		h.self = ctx.Self()
		h.upstream = ctx.Spawn(h.env.props(func() actor.Actor {
			return newShareUpstream(h.env, h.up, h.dial, h.self, h.win, h.gate, h.state, h.cfg)
		}))
		self := h.self
		h.stop = make(chan struct{})
		h.env.acceptLoop(h.ln, h.stop, "share clients", func(c net.Conn) { h.env.send(self, &shareAccepted{conn: c}) })
	case *actor.Stopping:
		h.closing = true
		h.ln.Close()
		if h.stop != nil {
			close(h.stop)
		}
		h.win.close()
		h.gate.close()
		if h.report != nil {
			h.report.Stop()
		}
		for _, c := range h.clients {
			c.q.close()
		}
	}
}

// join starts a client actor for conn and queues the replay for it.
func (h *shareHub) join(ctx actor.Context, conn net.Conn) {
	if h.closing {
		conn.Close()
		return
	}
	c := &shareClient{addr: conn.RemoteAddr().String(), joined: time.Now()}
	c.q = newOutQueue(h.cfg.ClientBuffer, h.cfg.Slow, h.waitFor(c))
	replay := h.ring.chunks()
	for _, sb := range replay {
		// The replay fits (Replay <= ClientBuffer): nothing drops or
		// overflows (under SlowWait, a replay that fills the buffer
		// pauses the upstream until the client takes it).
		c.q.push(sb)
	}
	// In Stats before its actor starts writing the replay to it.
	h.state.mu.Lock()
	h.state.clients = append(h.state.clients, c)
	n := len(h.state.clients)
	h.state.mu.Unlock()
	up, win, hub := h.upstream, h.win, h.self
	c.pid = ctx.Spawn(h.env.props(func() actor.Actor { return newShareClient(h.env, conn, c, hub, up, win) }))
	h.clients[c.pid.Id] = c
	attrs := []any{"client", c.addr, "clients", n}
	if h.cfg.Replay > 0 {
		attrs = append(attrs, "replay", h.ring.n)
	}
	h.env.log.Info("client joined", attrs...)
}

// leave forgets a client; its actor is stopping or told to stop.
func (h *shareHub) leave(c *shareClient, reason string) {
	delete(h.clients, c.pid.Id)
	h.state.mu.Lock()
	for i, x := range h.state.clients {
		if x == c {
			h.state.clients = append(h.state.clients[:i], h.state.clients[i+1:]...)
			break
		}
	}
	n := len(h.state.clients)
	h.state.mu.Unlock()
	c.q.close()
	h.env.log.Info("client left", "client", c.addr, "reason", reason, "dropped", c.dropped.Load(), "clients", n)
}

// broadcast hands one chunk of the upstream's to every client, and lets
// the upstream's reader go on (unless a client's queue is now full).
func (h *shareHub) broadcast(ctx actor.Context, buf *engine.Buffer) {
	n := len(buf.B)
	defer h.gate.queued(n)
	h.state.from.Add(int64(n))
	h.ring.write(buf.B)
	if h.closing || len(h.clients) == 0 {
		engine.PutBuffer(buf)
		return
	}
	sb := &sharedBuf{b: buf}
	sb.refs.Store(int32(len(h.clients)))
	var slow []*shareClient
	for _, c := range h.clients {
		dropped, overflow := c.q.push(sb)
		if overflow {
			slow = append(slow, c)
			continue
		}
		if dropped > 0 {
			h.dropped(c, dropped)
		}
	}
	for _, c := range slow {
		h.SlowDisconnect(ctx, c, fmt.Sprintf("too slow: more than %d bytes waiting for it", h.cfg.ClientBuffer))
	}
}

// replayRing keeps the last bytes the upstream sent.
type replayRing struct {
	buf      []byte
	start, n int
}

func newReplayRing(size int) *replayRing { return &replayRing{buf: make([]byte, size)} }

func (r *replayRing) write(p []byte) {
	size := len(r.buf)
	if size == 0 {
		return
	}
	if len(p) >= size {
		copy(r.buf, p[len(p)-size:])
		r.start, r.n = 0, size
		return
	}
	end := (r.start + r.n) % size
	k := copy(r.buf[end:], p)
	copy(r.buf, p[k:])
	r.n += len(p)
	if r.n > size {
		r.start = (r.start + r.n - size) % size
		r.n = size
	}
}

// chunks returns what the ring holds, oldest first, in pooled buffers of
// at most shareChunk bytes, each held once.
func (r *replayRing) chunks() []*sharedBuf {
	var out []*sharedBuf
	add := func(p []byte) {
		for len(p) > 0 {
			k := min(len(p), shareChunk)
			b := engine.GetBuffer(k)
			copy(b.B, p[:k])
			sb := &sharedBuf{b: b}
			sb.refs.Store(1)
			out = append(out, sb)
			p = p[k:]
		}
	}
	if r.n == 0 {
		return nil
	}
	if end := r.start + r.n; end <= len(r.buf) {
		add(r.buf[r.start:end])
	} else {
		add(r.buf[r.start:])
		add(r.buf[:end-len(r.buf)])
	}
	return out
}
