package actors

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
)

// streamActor is one logical stream: the engine's StreamSide (the state
// machine, the receive window and the verdict on every frame the peer
// sends it, the same code the engine's Session and its simulator run),
// between its local socket (conn.go: the actor reads
// and writes it itself) and the link's Scheduler. It ends when its socket
// is closed and no goroutine of it is left.
type streamActor struct {
	env    *env
	self   *actor.PID
	link   *actor.PID
	peer   string // the link's peer, as its logs name it
	sched  *actor.PID
	target string
	side   engine.StreamSide // the engine's decisions: state, receive window, the verdict on the peer's frames
	budget *budget           // the link's, for growing the receive window
	rtt    *atomic.Int64     // the link's round trip, in nanoseconds
	params engine.Params
	id     uint32

	netConn   net.Conn              // the local socket (opener: the one a forward accepted; accepter: once dialled)
	reply     *proxyReply           // opener: a -D client waiting to hear how OPEN went
	opened    chan error            // opener: DialStream waiting for the same
	load      *atomic.Int32         // opener of a pooled -R's connection: its member's open streams
	share     *hostShare            // accepter: its count in its peer host's share (hostshare.go)
	policy    *forward.TargetPolicy // accepter: what the peer may have us dial
	openFrame *engine.Frame         // accepter: the OPEN, holding the first bytes
	datagram  bool                  // the stream carries datagrams (UDP)
	dialedUDP bool                  // accepter: its socket is a UDP socket it dialled
	proxyHere bool                  // accepter: a "-R port:socks" stream, served by a proxy here
	clientEOF bool                  // opener: the client had already shut its write side

	// The socket (conn.go).
	waiting    bool               // the reading goroutine is out
	paused     bool               // reading waits for credit
	readDone   bool               // reading has ended
	writeDone  bool               // the write side is shut (or failed)
	finQueued  bool               // the writer shuts the write side after the queue
	pendingFin bool               // accepter: shut the write side once dialled
	closed     bool               // the socket is shut: everything dropped
	ended      bool               // the stream has ended and stops
	endTold    bool               // the Link was told the stream ended on the wire
	running    int32              // goroutines of this stream alive: the reading one, writers, the dial
	raw        syscall.RawConn    // netConn's file descriptor; nil: a goroutine reads and writes
	credit     int64              // what the Scheduler granted that reading may still use
	wq         *writeQueue        // for the writer goroutine; nil until a write must wait
	reader     *socketRead        // the reading goroutine last started (it may read again)
	strand     *strand            // the link's, which runs this actor
	poll       *poller            // the link's poller, while it watches the socket
	pollTok    uint64             // the socket's registration with poll
	hup        bool               // the poller saw the socket's end (or an error): read on to it
	small      bool               // the last read was small: the next starts small (smallRead)
	sio        *streamIO          // the socket's non-blocking reads and writes
	local      *localPipe         // the library's: the application's end instead of a socket (local.go)
	okHeld     bool               // accepter, the library's: OPEN_OK waits for the first frame (sendHeldOK)
	out        []*engine.Buffer   // bytes for the socket until the flush (or, accepter, the dial); the stream owns them
	cancel     context.CancelFunc // the dial's
}

// runsOn tells the stream the strand it runs on: its reading goroutine
// runs it.
func (s *streamActor) runsOn(st *strand) { s.strand = st }

func (s *streamActor) Receive(ctx actor.Context) {
	s.receive(ctx)
	if !s.endTold && s.side.Done() && s.link != nil {
		s.endTold = true
		ctx.Send(s.link, &streamEnded{id: s.id})
	}
}

func (s *streamActor) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *engine.Frame:
		s.fromPeer(ctx, m)
	case *grant:
		s.grant(ctx, m.n)
	case *readAgain:
		s.readNow(ctx)
	case *readableNow:
		if m.hup {
			s.hup = true
		}
		if s.waiting && s.poll != nil {
			s.waiting = false
			s.readNow(ctx)
		}
	case *dataIn:
		s.waited(ctx, m)
	case *localWake:
		s.localWoken(ctx)
	case *wrote:
		s.consumed(ctx, m.n, m.queued)
	case *writerExit:
		s.writerExit(ctx, m)
	case *dialDone:
		s.dialDone(ctx, m)
	case *actor.Started:
		s.start(ctx)
	case *actor.Stopping:
		s.shut()
		tellOpened(s.opened, errLinkDown) // a no-op if OPEN was answered
		if s.load != nil {
			s.load.Add(-1)
			s.load = nil
		}
		if s.share != nil {
			s.env.hosts.release(s.share)
			s.share = nil
		}
		if s.datagram {
			s.env.log.Debug("UDP flow's stream ended", "stream", s.id, "target", s.target)
		}
		if s.openFrame != nil {
			s.openFrame.Release()
			s.openFrame = nil
		}
	}
}

func (s *streamActor) start(ctx actor.Context) {
	s.self = ctx.Self()
	s.small = true        // most streams start with a request, not a flood
	s.paused = true       // until the first grant
	if s.netConn != nil { // we opened it: the Link sent the OPEN, and attached us
		s.openSocket(s.netConn)
		if s.clientEOF {
			s.readEnded(ctx, io.EOF)
		}
		return
	}
	// The peer opened: dial the target; the first bytes wait until the
	// dial is done.
	f := s.openFrame
	s.openFrame = nil
	o, _ := engine.ParseOpen(f.Bytes()) // the Link parsed it already
	if len(o.Data) > 0 {
		_ = s.side.Early(len(o.Data)) // the Link checked it fits
		b := engine.GetBuffer(len(o.Data))
		copy(b.B, o.Data)
		s.env.stats.BytesIn.Add(int64(len(o.Data)))
		s.out = append(s.out, b) // the stream's until written
	}
	f.Release()
	if s.env.cfg.AcceptStream != nil { // the library's: the application takes it
		s.acceptLocal(ctx)
		return
	}
	if s.proxyHere { // the target is a proxy served here, at the far end of a pipe
		near, proxyEnd := net.Pipe()
		env, policy := s.env, s.policy
		s.env.goroutine(func() { serveProxyHere(env, proxyEnd, policy) })
		s.connected(ctx, near, nil)
		return
	}
	if !s.datagram {
		if conn, err, ok := s.env.splice(s.target); ok { // one of this node's own pools (splice.go)
			s.connected(ctx, conn, err)
			return
		}
	}
	if s.env.ownDial && !s.datagram {
		traceHop(hopDialStart)
		if conn, err, ok := dialNow(s.target); ok {
			traceHop(hopDialed)
			s.connected(ctx, conn, err)
			return
		}
	}
	s.dial()
}

// dialed answers the peer's OPEN once the dial is done.
func (s *streamActor) dialed(ctx actor.Context, err error) {
	if s.side.Done() {
		return
	}
	if err != nil {
		s.env.stats.dialFailures.Add(1)
		s.env.warn("target dial failed", "peer", s.peer, "stream", s.id, "target", s.target, "err", err)
		_ = s.side.Send(engine.TypeOpenFail)
		ctx.Send(s.sched, engine.NewReason(engine.TypeOpenFail, s.id, dialCode(err), err.Error()))
		return
	}
	_ = s.side.Send(engine.TypeOpenOK)
	var ok *engine.Frame
	if s.local != nil && s.env.cfg.AcceptStream != nil && s.local.holdOpenOK() { // the library's, not a splice's
		s.okHeld = true // it goes with the first frame (local.go: sendHeldOK)
	} else {
		ok = engine.NewEmpty(engine.TypeOpenOK, s.id)
	}
	ctx.Send(s.sched, &streamAttached{id: s.id, conn: s.self, ok: ok})
}

// consumed grants the peer credit for n bytes written to the socket, with
// queued bytes still waiting, and grows the window when it is the limit
// (engine.StreamSide.Consumed decides both).
func (s *streamActor) consumed(ctx actor.Context, n, queued int) {
	before := s.side.Window()
	var b engine.Budget // a nil *budget in the interface would not be nil
	if s.budget != nil {
		b = s.budget
	}
	c := s.side.Consumed(n, queued, time.Now(), time.Duration(s.rtt.Load()), b)
	if w := s.side.Window(); w != before {
		s.env.log.Debug("stream window grown", "stream", s.id, "window", w)
	}
	if c > 0 {
		ctx.Send(s.sched, engine.NewCredit(s.id, c))
	}
}

// socketClosed ends the stream once its socket is closed: a stream not
// ended by FIN both ways or RST is reset.
func (s *streamActor) socketClosed(ctx actor.Context) {
	if !s.side.Done() {
		s.reset(ctx, engine.CodeCancelled, "connection closed")
	}
	if s.budget != nil {
		s.side.GiveBack(s.budget)
	}
	tellOpened(s.opened, errLinkDown)
	ctx.Send(s.sched, &streamGone{id: s.id})
	s.env.stats.StreamsClosed.Add(1)
	ctx.Stop(s.self)
}

func (s *streamActor) fromPeer(ctx actor.Context, f *engine.Frame) {
	a, r := s.side.Arrive(f)
	switch a {
	case engine.ArriveDrop:
		f.Release()
	case engine.ArriveBroken:
		f.Release()
		s.env.warn("peer broke the stream's rules; resetting it", "peer", s.peer, "stream", s.id, "reason", r.String())
		s.reset(ctx, r.Code, r.Text)
	case engine.ArriveData:
		traceHop(hopStreamFrame)
		s.env.stats.BytesIn.Add(int64(f.Len()))
		if b := f.Payload; b != nil {
			f.Payload = nil
			s.output(ctx, b)
		} else if s.datagram { // an empty datagram is one too
			s.output(ctx, engine.GetBuffer(0))
		}
	case engine.ArriveFin:
		s.closeWrite(ctx)
		s.datagramsEnd(ctx)
	case engine.ArriveReset:
		s.env.log.Debug("stream reset by peer", "stream", s.id, "target", s.target, "reason", r.String())
		f.Release()
		if s.local != nil {
			s.local.setWhy(&ResetError{Reason: r})
		}
		s.abort(ctx)
	case engine.ArriveRefused:
		f.Release()
		s.env.warn("peer could not open stream", cause(r.Code.String()), "stream", s.id, "target", s.target, "reason", r.String())
		tellOpened(s.opened, &OpenError{Reason: r})
		if s.local != nil {
			s.local.setWhy(&OpenError{Reason: r})
		}
		if s.reply != nil { // a -D client: tell it why, then close
			b := bufferOf(s.reply.fail(r.Code))
			s.reply = nil
			s.closeAfter(ctx, b)
			return
		}
		s.abort(ctx)
	case engine.ArriveAccepted:
		f.Release()
		tellOpened(s.opened, nil)
		if s.reply != nil { // a -D client: tell it the tunnel is open
			if ok := s.reply.ok(); len(ok) > 0 {
				s.output(ctx, bufferOf(ok))
			}
			s.reply = nil
		}
	}
}

// reset sends RST and drops the socket, unless the stream already ended
// (its socket is then closing by itself).
func (s *streamActor) reset(ctx actor.Context, code engine.Code, text string) {
	if s.side.Done() {
		return
	}
	_ = s.side.Send(engine.TypeRst)
	ctx.Send(s.sched, engine.NewReason(engine.TypeRst, s.id, code, text))
	s.abort(ctx)
}

// bufferOf copies b into a pooled buffer.
func bufferOf(b []byte) *engine.Buffer {
	buf := engine.GetBuffer(len(b))
	copy(buf.B, b)
	return buf
}
