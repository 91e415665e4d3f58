package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
)

const upstreamKinds = "want tcp://host:port, fifo:READ_PATH,WRITE_PATH, exec:COMMAND or tunnel:ADDR,host:port"

// Upstream is a parsed UPSTREAM: what the clients of a Share share.
type Upstream struct {
	// Kind is tcp, fifo, exec or tunnel.
	Kind string
	// via is a tunnel's sockmux peer (a carrier ADDR); target is the
	// host:port that peer dials for us.
	via, target string

	spec   string
	dialer carriers.Dialer // the upstream's; a tunnel's link's
}

func (u *Upstream) String() string { return u.spec }

// Tunnel is a tunnel: upstream's peer (its carrier's dialer) and the
// host:port that peer dials; ok is false for another kind.
func (u *Upstream) Tunnel() (via carriers.Dialer, target string, ok bool) {
	if u.Kind != "tunnel" {
		return nil, "", false
	}
	return u.dialer, u.target, true
}

// ParseUpstream parses an UPSTREAM:
//
//	tcp://host:port (or host:port)  a TCP server
//	fifo:READ_PATH,WRITE_PATH       a pair of named pipes (made when absent): sockmux reads the first and writes the second
//	exec:COMMAND                    the stdout and stdin of COMMAND, run with sh -c
//	tunnel:ADDR,host:port           host:port as dialled by the sockmux peer at ADDR (any carrier ADDR), over a link to it
//
// opts configure the dialers (the TLS of a tunnel's link, the logger of an
// exec: command's stderr). What does not parse is ErrBadUpstream.
func ParseUpstream(s string, opts ...carriers.Option) (*Upstream, error) {
	bad := func(format string, args ...any) (*Upstream, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrBadUpstream, s, fmt.Sprintf(format, args...))
	}
	dialer := func(addr string) (carriers.Dialer, error) {
		d, err := carriers.NewDialer(addr, opts...)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrBadUpstream, s, err)
		}
		return d, nil
	}
	u := &Upstream{spec: s}
	switch {
	case s == "":
		return bad(upstreamKinds)
	case strings.HasPrefix(s, "tunnel:"):
		rest := s[len("tunnel:"):]
		i := strings.LastIndexByte(rest, ',')
		if i < 0 {
			return bad("want tunnel:ADDR,host:port")
		}
		u.Kind, u.via, u.target = "tunnel", rest[:i], rest[i+1:]
		host, port, err := net.SplitHostPort(u.target)
		if err != nil || host == "" || port == "" || port == "0" {
			return bad("target %q: want host:port", u.target)
		}
		if u.via == "" {
			return bad("want tunnel:ADDR,host:port (no ADDR)")
		}
		d, err := dialer(u.via)
		if err != nil {
			return nil, err
		}
		u.dialer = d
		return u, nil
	case strings.HasPrefix(s, "fifo:"), strings.HasPrefix(s, "exec:"):
		u.Kind = s[:4]
	case strings.HasPrefix(s, "comm:"), s == "stdio", s == "stdio:":
		return bad(upstreamKinds)
	default:
		if i := strings.Index(s, "://"); i >= 0 && s[:i] != "tcp" {
			return bad("unknown scheme %q (%s)", s[:i], upstreamKinds)
		}
		u.Kind = "tcp"
	}
	d, err := dialer(s)
	if err != nil {
		return nil, err
	}
	u.dialer = d
	return u, nil
}

// dialFunc makes one upstream connection.
type dialFunc func(ctx context.Context) (net.Conn, error)

// shareUpstream owns a Share's upstream connection: it dials it, redials
// it with backoff when it drops, reads it for the hub and writes it what
// the clients send, each chunk whole and in the order it came. What the
// clients send while the upstream is down waits (up to the input bound)
// for the next session.
type shareUpstream struct {
	env   *env
	self  *actor.PID
	hub   *actor.PID
	up    *Upstream
	dial  dialFunc
	win   *inflow
	gate  *upstreamGate // holds the reader
	state *shareState
	cfg   ShareConfig
	q     *inQueue

	closing bool
	cancel  context.CancelFunc // of a dial in progress
	timer   *time.Timer        // a redial waiting
	backoff time.Duration

	// The session: conn while live; done is closed when it ends; running
	// counts the goroutines of this and earlier sessions still alive,
	// which end before the next dial.
	gen     uint64
	live    bool
	conn    net.Conn
	done    chan struct{}
	running int
	next    bool // dial again once running is 0
}

func newShareUpstream(e *env, up *Upstream, dial dialFunc, hub *actor.PID, win *inflow, gate *upstreamGate, st *shareState, cfg ShareConfig) *shareUpstream {
	return &shareUpstream{env: e, up: up, dial: dial, hub: hub, win: win, gate: gate, state: st, cfg: cfg,
		q: newInQueue(), backoff: cfg.backoff}
}

func (u *shareUpstream) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *clientInput:
		if u.closing || !u.q.push(m.buf) {
			u.win.release(int64(len(m.buf.B)))
			engine.PutBuffer(m.buf)
		}
	case *upstreamIOEnd:
		if m.gen == u.gen && u.live {
			u.sessionDown(ctx, m.err, m.write)
		}
	case *upstreamIOExit:
		u.running--
		if u.running == 0 && u.next {
			u.next = false
			u.afterDown()
		}
	case *dialDone:
		u.cancel = nil
		if u.closing {
			if m.conn != nil {
				u.closeConn(m.conn)
			}
			return
		}
		if m.err != nil {
			u.env.log.Warn("upstream dial failed", "upstream", u.up.String(), "err", m.err)
			u.scheduleRedial()
			return
		}
		u.sessionUp(ctx, m.conn)
	case *redialTick:
		u.timer = nil
		if !u.closing && !u.live && u.cancel == nil && u.running == 0 {
			u.startDial()
		}
	case *redialRequest:
		if u.timer != nil && u.timer.Stop() {
			u.timer = nil
			u.backoff = u.cfg.backoff
			u.env.log.Info("redialling the upstream now", "upstream", u.up.String())
			u.startDial()
		}
	case *actor.Started:
		u.self = ctx.Self()
		u.startDial()
	case *actor.Stopping:
		u.closing = true
		if u.cancel != nil {
			u.cancel()
		}
		if u.timer != nil {
			u.timer.Stop()
		}
		if u.live {
			u.live = false
			close(u.done)
			u.closeConn(u.conn)
			u.state.up.Store(false)
		}
		u.q.close()
	}
}

func (u *shareUpstream) startDial() {
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	self, dial := u.self, u.dial
	u.env.goroutine(func() {
		c, err := dial(ctx)
		u.env.send(self, &dialDone{conn: c, err: err})
	})
}

func (u *shareUpstream) scheduleRedial() {
	d := time.Duration(float64(u.backoff) * (0.75 + rand.Float64()/2))
	u.backoff = min(2*u.backoff, u.cfg.maxBackoff)
	u.env.log.Info("upstream redial scheduled", "upstream", u.up.String(), "in", d.Round(time.Millisecond))
	self := u.self
	u.timer = time.AfterFunc(d, func() { u.env.send(self, &redialTick{}) })
}

// closeConn closes a connection: an exec: one off the actor, since closing
// it waits for its command to exit; the others at once, so that a fifo:
// far end that comes back cannot open the pipes we are leaving.
func (u *shareUpstream) closeConn(c net.Conn) {
	if u.up.Kind == "exec" {
		u.env.goroutine(func() { c.Close() })
		return
	}
	c.Close()
}

func (u *shareUpstream) sessionUp(ctx actor.Context, conn net.Conn) {
	u.gen++
	u.live, u.conn, u.done = true, conn, make(chan struct{})
	u.backoff = u.cfg.backoff
	u.running += 2
	gen, done := u.gen, u.done
	u.env.goroutine(func() { u.readLoop(gen, conn, done) })
	u.env.goroutine(func() { u.writeLoop(gen, conn, done) })
	u.state.up.Store(true)
	ctx.Send(u.hub, &upstreamStatus{up: true})
	u.env.log.Info("upstream up", "upstream", u.up.String(), "local", conn.LocalAddr().String())
}

func (u *shareUpstream) sessionDown(ctx actor.Context, err error, write bool) {
	u.live = false
	close(u.done)
	u.closeConn(u.conn)
	u.conn = nil
	u.state.up.Store(false)
	ctx.Send(u.hub, &upstreamStatus{up: false})
	reason := "closed by upstream"
	switch {
	case write:
		reason = "write: " + err.Error()
	case err != nil && !errors.Is(err, io.EOF):
		reason = err.Error()
	}
	u.env.log.Warn("upstream down", "upstream", u.up.String(), "reason", reason)
	if u.running == 0 {
		u.afterDown()
	} else {
		u.next = true
	}
}

// afterDown dials again once a session's goroutines are gone: a fifo: at
// once (opening it waits for the far end), the others after the backoff.
func (u *shareUpstream) afterDown() {
	if u.closing {
		return
	}
	if u.up.Kind == "fifo" {
		u.startDial()
		return
	}
	u.scheduleRedial()
}

// readLoop reads the upstream for the hub, each read once the gate lets
// it: while a client's queue is full (SlowWait) the upstream is not read,
// and TCP (or a pipe) pushes back on it.
func (u *shareUpstream) readLoop(gen uint64, conn net.Conn, done <-chan struct{}) {
	defer u.env.send(u.self, &upstreamIOExit{gen: gen})
	rd := newSockReader(conn)
	for {
		if !u.gate.wait(done) {
			return
		}
		bufs, n, err := rd.read(shareChunk, shareChunk)
		u.gate.read(n)
		for _, b := range bufs {
			u.env.send(u.hub, &upstreamData{buf: b})
		}
		if err != nil {
			u.env.send(u.self, &upstreamIOEnd{gen: gen, err: err})
			return
		}
	}
}

func (u *shareUpstream) writeLoop(gen uint64, conn net.Conn, done <-chan struct{}) {
	defer u.env.send(u.self, &upstreamIOExit{gen: gen})
	var (
		bufs []*engine.Buffer
		nb   net.Buffers
	)
	for {
		var ok bool
		bufs, ok = u.q.take(bufs[:0], done)
		if !ok {
			return
		}
		nb = nb[:0]
		total := 0
		for _, b := range bufs {
			nb = append(nb, b.B)
			total += len(b.B)
		}
		w := nb
		n, err := w.WriteTo(conn)
		for i, b := range bufs {
			engine.PutBuffer(b)
			bufs[i] = nil
		}
		u.win.release(int64(total))
		u.state.to.Add(n)
		if err != nil {
			u.env.send(u.self, &upstreamIOEnd{gen: gen, err: err, write: true})
			return
		}
	}
}

// inQueue is the clients' chunks waiting for the upstream, in the order
// they came. It outlives sessions: each session's writer takes from it
// until the session ends.
type inQueue struct {
	mu     sync.Mutex
	bufs   []*engine.Buffer
	closed bool
	wake   chan struct{}
}

func newInQueue() *inQueue { return &inQueue{wake: make(chan struct{}, 1)} }

// push queues b, or returns false once the queue is closed.
func (q *inQueue) push(b *engine.Buffer) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.bufs = append(q.bufs, b)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take waits for chunks and moves them all into dst; ok is false once the
// queue is closed or done is.
func (q *inQueue) take(dst []*engine.Buffer, done <-chan struct{}) ([]*engine.Buffer, bool) {
	for {
		select {
		case <-done:
			return dst, false
		default:
		}
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return dst, false
		}
		if len(q.bufs) > 0 {
			dst = append(dst, q.bufs...)
			clear(q.bufs)
			q.bufs = q.bufs[:0]
			q.mu.Unlock()
			return dst, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-done:
			return dst, false
		}
	}
}

// close returns what is queued to the pool and stops the writer.
func (q *inQueue) close() {
	q.mu.Lock()
	q.closed = true
	bufs := q.bufs
	q.bufs = nil
	q.mu.Unlock()
	for _, b := range bufs {
		engine.PutBuffer(b)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
