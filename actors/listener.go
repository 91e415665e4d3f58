package actors

import (
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
)

// listenerActor is one forward: an accept loop hands each connection to the
// newest live link, which opens a stream for it. With no link up, a
// connection waits up to the open timeout for one, then is closed.
type listenerActor struct {
	env     *env
	self    *actor.PID
	ln      net.Listener
	fwd     forward.Forward
	pending []waiting
	timer   *time.Timer

	// A reverse forward (the peer's -R) carries its connections over the
	// one link that asked for it, as OPENs of kind TargetForward.
	link *actor.PID
	kind engine.TargetKind
	// pool: a pooled reverse forward, whose connections go to its members
	// (pool.go); kind is TargetForward.
	pool *pool

	// proxy: a -D forward; each client's proxy handshake names its target.
	proxy     bool
	proxyBind string

	// stop is closed when the actor stops, to end its accept loop's
	// backoff wait (a removed forward, a dropped link's -R) at once.
	stop chan struct{}

	// waitingN is len(pending), for the accept loop: while connections
	// wait for a link, new ones wait behind them.
	waitingN atomic.Int32
}

type waiting struct {
	conn     net.Conn
	target   string
	first    []byte
	reply    *proxyReply
	opened   chan error
	deadline time.Time
}

func newListener(e *env, ln net.Listener, f forward.Forward) *listenerActor {
	return &listenerActor{env: e, ln: ln, fwd: f}
}

// newReverseListener serves the peer's -R number id on ln, for link.
func newReverseListener(e *env, ln net.Listener, link *actor.PID, id uint32) *listenerActor {
	return &listenerActor{env: e, ln: ln, link: link, kind: engine.TargetForward,
		fwd: forward.Forward{Bind: ln.Addr().String(), Target: strconv.FormatUint(uint64(id), 10)}}
}

func (l *listenerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *accepted:
		traceHop(hopListenerIn)
		if l.proxy && m.reply == nil { // a new client: its handshake first
			conn := m.conn
			l.env.goroutine(func() { l.proxyClient(conn) })
			return
		}
		if m.target == "" || m.reply != nil { // a client, not a DialStream
			l.env.stats.countForward(l.key())
		}
		target := m.target
		if target == "" {
			target = l.fwd.Target
		}
		l.pending = append(l.pending, waiting{conn: m.conn, target: target, first: m.first, reply: m.reply, opened: m.opened,
			deadline: time.Now().Add(l.env.cfg.OpenTimeout)})
		l.flush(ctx)
	case *linkAvailable:
		l.flush(ctx)
	case *openTimeoutTick:
		l.timer = nil
		l.flush(ctx)
	case *actor.Started:
		l.self = ctx.Self()
		if l.link == nil {
			l.env.links.watch(l.self)
		} else if l.ln != nil {
			l.env.watchBind(l.ln.Addr().String(), "", 1) // a peer's -R, not pooled
			l.env.addReverse(l.self, reverseBind{link: l.link, fwd: l.fwd, ln: l.ln.Addr()})
		}
		if l.ln == nil { // Node.DialStream's: no socket to accept on
			return
		}
		self := l.self
		l.stop = make(chan struct{})
		l.env.acceptLoop(l.ln, l.stop, l.what(), func(c net.Conn) {
			traceHop(hopAccepted)
			// (the accept has set TCP_NODELAY already.)
			if !l.openNow(c) {
				l.env.send(self, &accepted{conn: c})
			}
		})
	case *actor.Stopping:
		l.env.links.unwatch(l.self)
		if l.ln != nil {
			l.ln.Close()
			if l.link != nil {
				l.env.watchBind(l.ln.Addr().String(), "", 0)
				l.env.removeReverse(l.self)
			}
		}
		if l.stop != nil {
			close(l.stop)
		}
		if l.timer != nil {
			l.timer.Stop()
		}
		for _, w := range l.pending {
			tellOpened(w.opened, ErrClosed)
			w.conn.Close()
		}
		l.pending = nil
	}
}

// openNow is the accept loop's way to a link: a plain -L forward's
// connection, when a link is up and no earlier connection waits for one,
// goes to the newest link at once, and the accept loop runs the link's
// strand itself (unless a goroutine holds it already): the Link sends the
// OPEN, with the client's first bytes, on the goroutine the connection
// woke, where going through this actor would wake two more. It reports
// false when the connection is for the actor to handle.
func (l *listenerActor) openNow(c net.Conn) bool {
	if l.proxy || l.link != nil || l.waitingN.Load() > 0 {
		return false
	}
	if l.pool != nil {
		ch := l.env.pick(l.pool, false)
		if !ch.ok() || !ch.open(&openRequest{conn: c, forward: l.fwd.String()}, true) {
			return false
		}
		traceHop(hopListenerIn)
		l.env.stats.countForward(l.key())
		return true
	}
	link, st := l.env.links.newestOn()
	if link == nil {
		return false
	}
	traceHop(hopListenerIn)
	l.env.stats.countForward(l.key())
	ran := st != nil && st.claim()
	l.env.send(link, &openRequest{conn: c, kind: l.kind, target: l.fwd.Target, forward: l.fwd.String()})
	if ran {
		st.run(strandRunMax)
	}
	return true
}

// what names the listener's kind in its accept loop's log lines.
func (l *listenerActor) what() string {
	switch {
	case l.proxy:
		return "proxy"
	case l.pool != nil:
		return "pooled " + reverseForward
	case l.link != nil:
		return reverseForward
	}
	return "forward"
}

// key is the name RemoveForward and the stats know this forward by.
func (l *listenerActor) key() string {
	if l.proxy {
		return ProxyKey(l.proxyBind)
	}
	return ForwardKey(l.fwd)
}

// flush hands waiting connections to the newest link, closes those that
// waited too long, and arms a timer for the next deadline.
func (l *listenerActor) flush(ctx actor.Context) {
	now := time.Now()
	link := l.link
	if link == nil && l.pool == nil {
		link = l.env.links.newest()
	}
	keep := l.pending[:0]
	for _, w := range l.pending {
		req := &openRequest{conn: w.conn, kind: l.kind, target: w.target, forward: l.fwd.String(), first: w.first, reply: w.reply, opened: w.opened}
		sent := false
		if l.pool != nil {
			ch := l.env.pick(l.pool, false)
			sent = ch.ok() && ch.open(req, false)
		} else if link != nil {
			ctx.Send(link, req)
			sent = true
		}
		switch {
		case sent:
		case !now.Before(w.deadline):
			l.env.warn("no link within the open timeout; resetting connection", "forward", l.fwd.String(),
				"client", w.conn.RemoteAddr().String(), "open_timeout", l.env.cfg.OpenTimeout)
			if w.reply != nil {
				w.conn.Write(w.reply.fail(engine.CodeTimeout))
			}
			tellOpened(w.opened, errNoLink)
			if w.reply != nil {
				w.conn.Close() // a proxy client was told why
			} else {
				resetConn(w.conn)
			}
		default:
			keep = append(keep, w)
		}
	}
	clear(l.pending[len(keep):])
	l.pending = keep
	l.waitingN.Store(int32(len(l.pending)))
	if len(l.pending) > 0 && l.timer == nil {
		self := l.self
		l.timer = time.AfterFunc(time.Until(l.pending[0].deadline), func() { l.env.send(self, &openTimeoutTick{}) })
	}
}

// noLinkError is errNoLink: a net.Error, so callers that test for a
// timeout the net package's way see one.
type noLinkError struct{}

func (noLinkError) Error() string   { return "no link within the open timeout" }
func (noLinkError) Timeout() bool   { return true }
func (noLinkError) Temporary() bool { return true }

// OpenError is the peer's reason for refusing a stream.
type OpenError struct{ Reason engine.Reason }

func (e *OpenError) Error() string { return "peer could not open the stream: " + e.Reason.String() }

// Unwrap is the error the reason's code stands for (engine.ErrDialFailed,
// engine.ErrRefused, ...), for errors.Is.
func (e *OpenError) Unwrap() error { return e.Reason.Code.Err() }

// tellOpened reports how an OPEN went to whoever waits for it, once.
func tellOpened(ch chan error, err error) {
	if ch != nil {
		select {
		case ch <- err:
		default:
		}
	}
}
