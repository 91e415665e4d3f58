package actors

import (
	"errors"
	"net"

	"github.com/asynkron/protoactor-go/actor"

	"sockmux/engine"
)

// listenerActor is one forward: an accept loop hands each connection to the
// newest live link, which opens a stream for it.
type listenerActor struct {
	env *env
	ln  net.Listener
	fwd engine.Forward
}

func newListener(e *env, ln net.Listener, f engine.Forward) *listenerActor {
	return &listenerActor{env: e, ln: ln, fwd: f}
}

func (l *listenerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *accepted:
		link := l.env.links.newest()
		if link == nil {
			l.env.log.Warn("no link up; closing connection", "forward", l.fwd.String(), "client", m.conn.RemoteAddr().String())
			m.conn.Close()
			return
		}
		ctx.Send(link, &openStream{conn: m.conn, target: l.fwd.Target, forward: l.fwd.String()})
	case *actor.Started:
		self, ln := ctx.Self(), l.ln
		l.env.goroutine(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						l.env.log.Error("forward stopped accepting", "listen", ln.Addr().String(), "err", err)
					}
					return
				}
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetNoDelay(true)
				}
				l.env.send(self, &accepted{conn: c})
			}
		})
	case *actor.Stopping:
		l.ln.Close()
	}
}
