package actors

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sockmux/engine"
)

// streamActor is one logical stream: the engine.Stream state machine and
// the receive window, between its Connection and the link's Scheduler. It
// ends when its Connection has closed the socket.
type streamActor struct {
	env    *env
	id     uint32
	link   *actor.PID
	sched  *actor.PID
	conn   *actor.PID
	target string
	params engine.Params
	state  *engine.Stream
	recv   engine.RecvWindow
	budget *budget       // the link's, for growing recv
	rtt    *atomic.Int64 // the link's round trip, in nanoseconds
	grown  uint32        // what recv took from budget

	datagram  bool                 // the stream carries datagrams (UDP)
	netConn   net.Conn             // opener: the socket a forward accepted
	firstLen  int                  // opener: bytes of the window the OPEN used
	reply     *proxyReply          // opener: a -D client waiting to hear how OPEN went
	opened    chan error           // opener: DialStream waiting for the same
	proxyHere bool                 // accepter: a "-R port:socks" stream, served by a proxy here
	policy    *engine.TargetPolicy // accepter: what the peer may have us dial
	clientEOF bool                 // opener: the client had already shut its write side
	openFrame *engine.Frame        // accepter: the OPEN, holding the first bytes
}

func (s *streamActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *engine.Frame:
		s.fromPeer(ctx, m)
	case *dataIn:
		if s.state.Send(engine.TypeData) != nil {
			for _, b := range m.bufs {
				engine.PutBuffer(b)
			}
			return
		}
		out := &dataOut{frames: make([]*engine.Frame, len(m.bufs))}
		for i, b := range m.bufs {
			out.frames[i] = &engine.Frame{Type: engine.TypeData, Stream: s.id, Payload: b}
		}
		ctx.Send(s.sched, out)
	case *wrote:
		c, grow := s.recv.Consumed(m.n, m.queued, time.Now(), time.Duration(s.rtt.Load()))
		if grow > 0 {
			g := s.recv.Grow(s.budget.take(grow))
			s.grown += g
			c += g
			s.env.log.Debug("stream window grown", "stream", s.id, "window", s.recv.Size())
		}
		if c > 0 && s.state.CanRecv() {
			ctx.Send(s.sched, engine.NewCredit(s.id, c))
		}
	case *readEOF:
		if s.state.CanSend() {
			_ = s.state.Send(engine.TypeFin)
			ctx.Send(s.sched, engine.NewEmpty(engine.TypeFin, s.id))
		}
	case *ioFailed:
		s.env.log.Debug("stream socket error", "stream", s.id, "target", s.target, "write", m.write, "err", m.err)
		s.reset(ctx, engine.CodeCancelled, m.err.Error())
	case *dialed:
		s.dialed(ctx, m.err)
	case *connClosed:
		if !s.state.Done() {
			s.reset(ctx, engine.CodeCancelled, "connection closed")
		}
		s.budget.give(s.grown)
		s.grown = 0
		tellOpened(s.opened, ErrLinkDown)
		ctx.Send(s.link, &streamDone{id: s.id})
		ctx.Send(s.sched, &forget{id: s.id})
		s.env.stats.StreamsClosed.Add(1)
		ctx.Stop(ctx.Self())
	case *actor.Started:
		s.start(ctx)
	case *actor.Stopping:
		tellOpened(s.opened, ErrLinkDown) // a no-op if OPEN was answered
		if s.openFrame != nil {
			s.openFrame.Release()
			s.openFrame = nil
		}
	}
}

func (s *streamActor) start(ctx actor.Context) {
	if s.netConn != nil { // we opened it: the Link sent the OPEN
		c := newConnection(s.env, ctx.Self(), s.netConn, "", s.params, s.datagram)
		c.eof = s.clientEOF
		s.netConn = nil
		s.conn = ctx.Spawn(s.env.props(func() actor.Actor { return c }))
		ctx.Send(s.sched, &attach{id: s.id, conn: s.conn, used: s.firstLen})
		return
	}
	// The peer opened: dial the target; the first bytes wait in the
	// Connection's queue until the dial is done.
	var proxyEnd net.Conn
	if s.proxyHere { // the target is a proxy served here, at the far end of a pipe
		var near net.Conn
		near, proxyEnd = net.Pipe()
		s.netConn = near
	}
	c := newConnection(s.env, ctx.Self(), s.netConn, s.target, s.params, s.datagram)
	s.netConn = nil
	s.conn = ctx.Spawn(s.env.props(func() actor.Actor { return c }))
	if proxyEnd != nil {
		env, policy := s.env, s.policy
		s.env.goroutine(func() { serveProxyHere(env, proxyEnd, policy) })
		s.dialed(ctx, nil)
	}
	f := s.openFrame
	s.openFrame = nil
	o, _ := engine.ParseOpen(f.Bytes()) // the Link parsed it already
	if len(o.Data) > 0 {
		_ = s.recv.Receive(len(o.Data)) // the Link checked it fits
		b := engine.GetBuffer(len(o.Data))
		copy(b.B, o.Data)
		s.env.stats.BytesIn.Add(int64(len(o.Data)))
		ctx.Send(s.conn, &write{buf: b})
	}
	f.Release()
}

func (s *streamActor) dialed(ctx actor.Context, err error) {
	if s.state.Done() {
		return
	}
	if err != nil {
		s.env.stats.DialFailures.Add(1)
		s.env.log.Warn("target dial failed", "stream", s.id, "target", s.target, "err", err)
		_ = s.state.Send(engine.TypeOpenFail)
		ctx.Send(s.sched, engine.NewReason(engine.TypeOpenFail, s.id, engine.CodeDialFailed, err.Error()))
		return
	}
	_ = s.state.Send(engine.TypeOpenOK)
	ctx.Send(s.sched, engine.NewEmpty(engine.TypeOpenOK, s.id))
	ctx.Send(s.sched, &attach{id: s.id, conn: s.conn})
}

func (s *streamActor) fromPeer(ctx actor.Context, f *engine.Frame) {
	err := s.state.Recv(f.Type)
	if errors.Is(err, engine.ErrStreamClosed) {
		f.Release()
		return
	}
	if err != nil {
		f.Release()
		s.env.log.Warn("stream protocol error; resetting it", "stream", s.id, "err", err)
		s.reset(ctx, engine.CodeProtocol, err.Error())
		return
	}
	switch f.Type {
	case engine.TypeData:
		if err := s.recv.Receive(f.Len()); err != nil {
			f.Release()
			s.env.log.Warn("stream flow control violation; resetting it", "stream", s.id, "err", err)
			s.reset(ctx, engine.CodeFlowControl, err.Error())
			return
		}
		s.env.stats.BytesIn.Add(int64(f.Len()))
		if f.Payload != nil {
			ctx.Send(s.conn, &write{buf: f.Payload})
			f.Payload = nil
		}
	case engine.TypeFin:
		ctx.Send(s.conn, &closeWrite{})
	case engine.TypeRst:
		r, _ := engine.ParseReason(f.Bytes())
		s.env.log.Debug("stream reset by peer", "stream", s.id, "target", s.target, "reason", r.String())
		f.Release()
		ctx.Send(s.conn, &abort{})
	case engine.TypeOpenFail:
		r, _ := engine.ParseReason(f.Bytes())
		f.Release()
		s.env.log.Warn("peer could not open stream", "stream", s.id, "target", s.target, "reason", r.String())
		tellOpened(s.opened, &OpenError{Reason: r})
		if s.reply != nil { // a -D client: tell it why, then close
			ctx.Send(s.conn, &closeAfter{buf: bufferOf(s.reply.fail(r.Code))})
			s.reply = nil
			return
		}
		ctx.Send(s.conn, &abort{})
	default: // OPEN_OK
		f.Release()
		tellOpened(s.opened, nil)
		if s.reply != nil { // a -D client: tell it the tunnel is open
			if ok := s.reply.ok(); len(ok) > 0 {
				ctx.Send(s.conn, &write{buf: bufferOf(ok)})
			}
			s.reply = nil
		}
	}
}

// reset sends RST and drops the socket, unless the stream already ended
// (its Connection is then closing by itself).
func (s *streamActor) reset(ctx actor.Context, code engine.Code, text string) {
	if s.state.Done() {
		return
	}
	_ = s.state.Send(engine.TypeRst)
	ctx.Send(s.sched, engine.NewReason(engine.TypeRst, s.id, code, text))
	ctx.Send(s.conn, &abort{})
}

// ErrLinkDown is a stream whose link went down before the peer answered.
var ErrLinkDown = errors.New("link went down before the stream opened")

// bufferOf copies b into a pooled buffer.
func bufferOf(b []byte) *engine.Buffer {
	buf := engine.GetBuffer(len(b))
	copy(buf.B, b)
	return buf
}
