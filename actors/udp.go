package actors

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
)

// UDP defaults.
const (
	DefaultUDPIdle = 60 * time.Second
	DefaultUDPMax  = 1024
	// maxDatagram is the largest datagram read: the most UDP can carry.
	maxDatagram = 64 << 10
	// udpSessionQueue bounds the datagrams waiting for one session's
	// stream; past it they are dropped and counted, as a socket would.
	udpSessionQueue = 256
	// udpSocketBuffer is the kernel buffer a UDP forward asks for.
	udpSocketBuffer = 4 << 20
)

// datagramIn is a datagram a UDP forward's socket received.
type datagramIn struct {
	from *net.UDPAddr
	buf  *engine.Buffer
}

// udpTick asks a UDP forward to expire idle sessions.
type udpTick struct{}

// udpListener is a UDP forward: one socket, and a pseudo-stream per client
// address. Each stream carries that client's datagrams, one DATA frame per
// datagram, to its own target socket at the peer; replies come back on the
// stream and leave from this socket to that client. Idle sessions expire,
// and at most UDPMax live at once, the least recently active evicted first.
type udpListener struct {
	env       *env
	self      *actor.PID
	pc        *net.UDPConn
	fwd       forward.Forward
	link      *actor.PID // fixed for the peer's -R; else the newest link
	pool      *pool      // a pooled UDP -R: each flow goes to a member (pool_udp.go)
	localOnly bool       // a pool's door: flows go to this node's members only
	kind      engine.TargetKind
	sessions  map[string]*udpConn
	timer     *time.Timer
}

func newUDPListener(e *env, pc *net.UDPConn, f forward.Forward) *udpListener {
	return &udpListener{env: e, pc: pc, fwd: f, kind: engine.TargetUDP, sessions: make(map[string]*udpConn)}
}

func newReverseUDPListener(e *env, pc *net.UDPConn, link *actor.PID, id uint32) *udpListener {
	return &udpListener{env: e, pc: pc, link: link, kind: engine.TargetForward, sessions: make(map[string]*udpConn),
		fwd: forward.Forward{Bind: pc.LocalAddr().String(), Target: strconv.FormatUint(uint64(id), 10), UDP: true}}
}

func (u *udpListener) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *datagramIn:
		u.datagram(ctx, m)
	case *doorFlowEnded:
		u.doorFlowEnded(m)
	case *udpTick:
		u.timer = nil
		u.expire(time.Now())
		u.arm()
	case *actor.Started:
		u.self = ctx.Self()
		// Many clients share this socket: let the kernel hold bursts (it
		// may cap the size at net.core.rmem_max).
		_ = u.pc.SetReadBuffer(udpSocketBuffer)
		_ = u.pc.SetWriteBuffer(udpSocketBuffer)
		self, pc := u.self, u.pc
		u.env.goroutine(func() {
			for {
				b := engine.GetBuffer(maxDatagram)
				n, from, err := pc.ReadFromUDP(b.B)
				if err != nil {
					engine.PutBuffer(b)
					if !errors.Is(err, net.ErrClosed) {
						u.env.log.Error("UDP forward stopped reading", "listen", pc.LocalAddr().String(), "err", err)
					}
					return
				}
				b.B = b.B[:n]
				u.env.send(self, &datagramIn{from: from, buf: engine.ShrinkBuffer(b)})
			}
		})
		u.arm()
		if u.link != nil { // a peer's -R: the hub cluster's directory hears of it (a pool's: of the pool, pool.go)
			u.env.watchUDPBind(u.fwd.Bind, 1)
		}
	case *actor.Stopping:
		if u.link != nil {
			u.env.watchUDPBind(u.fwd.Bind, 0)
		}
		u.pc.Close()
		if u.timer != nil {
			u.timer.Stop()
		}
		for _, s := range u.sessions {
			s.Close()
		}
	}
}

func (u *udpListener) arm() {
	if u.timer == nil && len(u.sessions) > 0 {
		self := u.self
		u.timer = time.AfterFunc(max(u.env.cfg.UDPIdle/4, time.Millisecond), func() { u.env.send(self, &udpTick{}) })
	}
}

func (u *udpListener) datagram(ctx actor.Context, m *datagramIn) {
	key := m.from.String()
	s := u.sessions[key]
	if s != nil && (s.isClosed() || u.pool != nil && !s.choice.live()) {
		// Its stream ended (a link down ends its streams), or its pool
		// member is no longer live: the flow opens again.
		s.Close()
		delete(u.sessions, key)
		s = nil
	}
	if s == nil {
		link := u.link
		if link == nil && u.pool == nil {
			link = u.env.links.newest()
		}
		if link == nil && u.pool == nil {
			u.env.stats.droppedDatagrams.Add(1)
			engine.PutBuffer(m.buf)
			return
		}
		if len(u.sessions) >= u.env.cfg.UDPMax {
			u.evictOldest()
		}
		s = newUDPConn(u.pc, m.from, &u.env.stats)
		if u.pool != nil {
			if !u.openPooled(s) {
				u.env.stats.droppedDatagrams.Add(1)
				engine.PutBuffer(m.buf)
				return
			}
		} else {
			ctx.Send(link, &openRequest{conn: s, kind: u.kind, target: u.fwd.Target, forward: u.fwd.String(), datagram: true})
		}
		u.sessions[key] = s
		u.env.stats.countForward(ForwardKey(u.fwd))
		u.env.log.Debug("UDP session", "forward", u.fwd.String(), "client", key)
		u.arm()
	}
	s.deliver(m.buf)
}

func (u *udpListener) evictOldest() {
	var oldest string
	var at time.Time
	for k, s := range u.sessions {
		if l := s.lastActive(); oldest == "" || l.Before(at) {
			oldest, at = k, l
		}
	}
	if oldest != "" {
		u.env.log.Info("UDP session evicted (limit reached)", "forward", u.fwd.String(), "client", oldest, "limit", u.env.cfg.UDPMax)
		u.sessions[oldest].Close()
		delete(u.sessions, oldest)
	}
}

func (u *udpListener) expire(now time.Time) {
	for k, s := range u.sessions {
		if s.isClosed() {
			delete(u.sessions, k)
			continue
		}
		if now.Sub(s.lastActive()) >= u.env.cfg.UDPIdle {
			u.env.log.Debug("UDP session expired", "forward", u.fwd.String(), "client", k, "idle", u.env.cfg.UDPIdle)
			s.Close()
			delete(u.sessions, k)
		}
	}
}

// udpConn is one client's side of a UDP forward, as a net.Conn whose Read
// returns one datagram and whose Write sends one, to that client, from the
// forward's socket.
type udpConn struct {
	pc     *net.UDPConn
	peer   *net.UDPAddr
	stats  *Stats
	choice poolChoice // a pool's flow: where it went (its listener's, pool_udp.go)

	mu       sync.Mutex
	queue    []*engine.Buffer
	closed   bool
	wake     chan struct{}
	last     time.Time
	deadline time.Time
}

func newUDPConn(pc *net.UDPConn, peer *net.UDPAddr, st *Stats) *udpConn {
	return &udpConn{pc: pc, peer: peer, stats: st, wake: make(chan struct{}, 1), last: time.Now()}
}

func (c *udpConn) deliver(b *engine.Buffer) {
	c.mu.Lock()
	if c.closed || len(c.queue) >= udpSessionQueue {
		c.mu.Unlock()
		c.stats.droppedDatagrams.Add(1)
		engine.PutBuffer(b)
		return
	}
	c.queue = append(c.queue, b)
	c.last = time.Now()
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *udpConn) lastActive() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *udpConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Read returns the next datagram (cut to len(p); sockmux always reads
// with room for the largest).
func (c *udpConn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			b := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.mu.Unlock()
			n := copy(p, b.B)
			engine.PutBuffer(b)
			return n, nil
		}
		if c.closed {
			c.mu.Unlock()
			return 0, io.EOF
		}
		dl := c.deadline
		c.mu.Unlock()
		if dl.IsZero() {
			<-c.wake
			continue
		}
		d := time.Until(dl)
		if d <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		select {
		case <-c.wake:
			t.Stop()
		case <-t.C:
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Write sends p to the client as one datagram.
func (c *udpConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	closed := c.closed
	c.last = time.Now()
	c.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	return c.pc.WriteToUDP(p, c.peer)
}

// Close ends the session: Read returns EOF once the queue is empty.
func (c *udpConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	c.stats.droppedDatagrams.Add(int64(len(q))) // never sent: no stream took them
	for _, b := range q {
		engine.PutBuffer(b)
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

func (c *udpConn) LocalAddr() net.Addr  { return c.pc.LocalAddr() }
func (c *udpConn) RemoteAddr() net.Addr { return c.peer }

func (c *udpConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *udpConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

func (c *udpConn) SetWriteDeadline(time.Time) error { return nil }
