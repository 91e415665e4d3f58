package actors

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

// The socket half of a stream: its Stream actor owns the local socket,
// accepted by a forward or dialled for the peer, and does its I/O itself
// where it can without waiting. An idle stream costs one parked goroutine
// and no buffer:
//
//   - Reading: with credit from the Scheduler, the actor starts a reading
//     goroutine, which reads once bytes are there (readv into pooled
//     buffers, taken only then), hands them to the actor and ends. While
//     it waits it has peeked at the socket and done nothing else, so its
//     stack stays the smallest a goroutine has. After a read that took all
//     it asked for, the actor reads on itself, without waiting, until the
//     socket is empty or the credit used up.
//   - Writing: the actor writes what the peer sent, all the DATA that came
//     in one mailbox run together, with one non-blocking writev. Only what
//     the socket does not take at once goes to a write queue, for a writer
//     goroutine that writes it, blocking, and ends when the queue is
//     empty. On a socket with no file descriptor (a pipe, a UDP session)
//     every write goes through the writer.
//
// So a socket has one reader at a time (the actor, or the goroutine it
// started and whose end it waits for) and one writer at a time (the actor,
// or the writer goroutine while the queue says it runs).

// readFrames is how many frames' worth one read of a local socket may take:
// one readv fills up to this many pooled buffers, which travel together and
// leave in one carrier write.
const readFrames = 4

// readAgain asks a Stream actor to read again after a read that took all it
// asked for: more may be waiting, after what else is in its mailbox.
type readAgain struct{}

// readableNow tells a Stream actor, from its link's poller, that its socket
// has something to say: bytes, or (hup) its end or an error, which the
// poller will not report again.
type readableNow struct{ hup bool }

// The one readMore every stream sends itself, and the poller's two words.
var (
	readAgainMsg = &readAgain{}
	readableMsg  = &readableNow{}
	hangupMsg    = &readableNow{hup: true}
)

// openSocket takes the stream's socket, accepted or just dialled, for I/O,
// and has the link's poller watch it (where there is one). Reading starts
// with the first grant of credit.
func (s *streamActor) openSocket(conn net.Conn) {
	s.netConn = conn
	if e, ok := conn.(*localEnd); ok { // the library's: a pipe, not a socket
		s.local = e.p
		s.local.attach(s.env, s.self, s.strand, s.maxRead(), s.side.Window())
		return
	}
	s.raw = rawConn(conn)
	if s.raw != nil && s.strand != nil {
		if p := s.strand.poller(s.env); p != nil {
			if tok := p.add(s.raw, s.self); tok != 0 {
				s.poll, s.pollTok = p, tok
			}
		}
	}
}

// unpoll has the poller stop watching the socket, before it is closed.
func (s *streamActor) unpoll() {
	if s.poll != nil {
		s.poll.remove(s.pollTok, s.raw)
		s.poll, s.pollTok = nil, 0
	}
}

// dial dials the target in a goroutine, which reports with dialDone.
func (s *streamActor) dial() {
	traceHop(hopDialStart)
	dctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.running++
	env, self, target, dial := s.env, s.self, s.target, s.env.cfg.dialTarget
	if s.datagram {
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		}
	}
	env.goroutine(func() {
		conn, err := dial(dctx, target)
		env.send(self, &dialDone{conn: conn, err: err})
	})
}

// dialDone takes the dial's end.
func (s *streamActor) dialDone(ctx actor.Context, m *dialDone) {
	traceHop(hopDialed)
	s.running--
	s.cancel = nil
	s.connected(ctx, m.conn, m.err)
}

// connected takes the dialled socket, writes what waited for it and
// answers the OPEN.
func (s *streamActor) connected(ctx actor.Context, conn net.Conn, err error) {
	if err != nil {
		s.shut()
		s.dialed(ctx, err)
		s.maybeClosed(ctx)
		return
	}
	if s.closed {
		conn.Close()
		s.maybeClosed(ctx)
		return
	}
	s.openSocket(conn)
	s.dialedUDP = s.datagram
	s.flush(ctx)
	fin := s.pendingFin
	if fin {
		s.pendingFin = false
		s.closeWrite(ctx)
	}
	s.dialed(ctx, nil)
	if fin {
		s.datagramsEnd(ctx)
	}
}

// grant adds credit from the Scheduler and reads if reading waited for it.
func (s *streamActor) grant(ctx actor.Context, n int64) {
	s.credit += n
	if s.paused {
		s.paused = false
		s.readNow(ctx) // bytes are likely waiting
	}
}

// readNow reads what the socket holds, up to the credit, with one
// non-blocking read and sends it on; when the socket is empty a reading
// goroutine waits for more.
func (s *streamActor) readNow(ctx actor.Context) {
	if !s.mayRead() {
		return
	}
	if s.local != nil {
		s.readLocal(ctx)
		return
	}
	if s.raw == nil {
		s.wait()
		return
	}
	max, frame := s.readSize()
	bufs, n, err := s.io().read(s.raw, max, frame)
	if n > 0 {
		traceHop(hopSocketRead)
	}
	if len(bufs) == 0 && err == nil {
		s.wait() // nothing there
		return
	}
	s.small = n < smallRead
	s.readOn(ctx, bufs, n, max, err)
}

// smallRead is the first read of a stream whose last read was small: one
// buffer of this size, not the pooled 64 KiB buffers a full read takes
// (and, after a burst of allocation, zeroes). A read that fills it reads on
// at full size.
const smallRead = 4 << 10

// mayRead says whether the socket is to be read now, and counts a stall
// when only credit is missing.
func (s *streamActor) mayRead() bool {
	if s.readDone || s.closed || s.waiting || s.netConn == nil {
		return false
	}
	if s.credit <= 0 {
		s.paused = true
		s.env.stats.creditStalls.Add(1)
		return false
	}
	return true
}

// readSize is how much one read may take, in buffers of what size: up to
// the credit, a datagram whatever its size (it is dropped if it does not
// fit), and one frame's worth with a plain Read.
func (s *streamActor) readSize() (max, frame int) {
	switch {
	case s.datagram:
		return maxDatagram, maxDatagram
	case s.raw == nil:
		n := int(min(s.credit, int64(s.maxRead())))
		return n, n
	case s.small:
		n := int(min(s.credit, smallRead, int64(s.maxRead())))
		return n, n
	}
	return int(min(s.credit, int64(s.maxRead()*readFrames))), s.maxRead()
}

// maxRead is the largest DATA payload the peer takes.
func (s *streamActor) maxRead() int { return int(s.params.SendMax) }

// wait has a goroutine read once the socket has bytes; its dataIn hands
// them over. The goroutine that brought the last read, if it is running
// the link's strand right now (this very call may be on it), waits again
// instead of ending: a busy stream keeps one reading goroutine, which runs
// what its reads cause itself, rather than starting one per read.
func (s *streamActor) wait() {
	if s.local != nil { // the pipe says when the application wrote
		s.waiting = true
		s.local.arm()
		return
	}
	if s.raw != nil && !s.datagram && s.credit > engine.IdleAllowance {
		// The socket is empty: what the reader holds beyond the idle
		// allowance goes back to the link for busier streams.
		s.giveBack(s.credit - engine.IdleAllowance)
	}
	s.waiting = true
	if s.poll != nil {
		return // the poller says when the socket is readable (readable)
	}
	s.running++
	max, frame := s.readSize()
	if r := s.reader; r != nil {
		r.max, r.frame = max, frame // read by it only once it is asked again, below
		if r.state.CompareAndSwap(readerHanded, readerAgain) {
			return
		}
	}
	r := &socketRead{env: s.env, self: s.self, strand: s.strand, rd: sockReader{conn: s.netConn, raw: s.raw, datagram: s.datagram}, max: max, frame: frame}
	s.reader = r
	s.env.goroutine(r.run)
}

// A reading goroutine's states (socketRead.state).
const (
	readerReading int32 = iota // waiting for the socket, or reading it
	readerHanded               // it handed a read over and runs the strand; the stream may ask it to read again
	readerAgain                // the stream asked it to read again
	readerGone                 // it ended: the next wait starts another
)

// socketRead is a stream's reading goroutine, all it holds while parked in
// one allocation: an idle stream keeps nothing else.
type socketRead struct {
	env        *env
	self       *actor.PID
	strand     *strand // the link's: run here after handing a read over
	rd         sockReader
	max, frame int // what to read: set by the stream before readerAgain
	peeked     bool
	state      atomic.Int32
	// bufs and err are the read being made: the goroutine owns the
	// buffers until a dataIn hands them to the actor (or, the actor
	// gone, to releaseMessage).
	bufs []*engine.Buffer
	err  error
}

// run waits until the socket has something to say (bytes, its end or an
// error), reads up to max bytes into buffers of at most frame bytes each,
// and hands them over. Until the socket is readable it has only peeked at
// it, so the goroutine parked here holds no buffer. A socket with no file
// descriptor is read with a plain Read.
//
// Once it has handed a read over it runs the link's strand, unless
// another goroutine does already: the Stream takes the read and sends it
// on to the carrier on this goroutine, woken once by the socket. If the
// Stream then wants more, it asks this goroutine to read again (state);
// otherwise the goroutine ends.
func (r *socketRead) run() {
	for {
		r.bufs, r.err, r.peeked = nil, nil, false
		if r.rd.raw == nil {
			r.bufs, _, r.err = r.rd.read(r.max, r.frame)
		} else if err := r.rd.raw.Read(r.try); err != nil {
			r.err = err
		}
		msg := &dataIn{bufs: r.bufs, err: r.err}
		r.bufs, r.err = nil, nil
		ran := r.strand != nil && r.strand.claim()
		r.state.Store(readerHanded)
		r.env.send(r.self, msg)
		if ran {
			r.strand.run(strandRunMax)
		}
		if r.state.CompareAndSwap(readerHanded, readerGone) {
			return
		}
		r.state.Store(readerReading) // asked again: max and frame are set
	}
}

// try is the raw read's callback: a peek first, then a read; false waits
// for the socket to be readable.
func (r *socketRead) try(fd uintptr) bool {
	if !r.peeked {
		r.peeked = true
		ok, err := readable(fd)
		if !ok {
			return false
		}
		if err != nil {
			// The peek took the socket's error (a reset): the read
			// after it would see only a clean end.
			r.err = err
			return true
		}
	}
	r.bufs, _, r.err = readFD(int(fd), r.max, r.frame, nil, r.rd.datagram)
	if len(r.bufs) > 0 {
		traceHop(hopSocketRead)
	}
	return r.err != syscall.EAGAIN && r.err != syscall.EINTR // else a wake-up with nothing there: wait again
}

// waited takes a reading goroutine's end: bytes it read, or the end of
// reading.
func (s *streamActor) waited(ctx actor.Context, m *dataIn) {
	s.waiting = false
	s.running--
	n := 0
	for _, b := range m.bufs {
		n += len(b.B)
	}
	if n > 0 {
		traceHop(hopStreamIn)
	}
	max, _ := s.readSize()
	s.readOn(ctx, m.bufs, n, max, m.err)
	s.maybeClosed(ctx)
}

// readOn sends on n bytes read of max asked for, and reads on: at once
// after a full read (once the mailbox's other messages had their turn),
// else from a goroutine that waits.
func (s *streamActor) readOn(ctx actor.Context, bufs []*engine.Buffer, n, max int, err error) {
	if len(bufs) > 0 { // bytes, or an empty datagram
		s.dataRead(ctx, bufs, n)
	}
	switch {
	case s.readDone || s.closed:
	case err != nil:
		s.readEnded(ctx, err)
	case n >= max || s.datagram && len(bufs) > 0 || s.hup && n > 0:
		// More may be there: the rest of what filled the read, the
		// next datagram, or the end the poller saw coming (it reports
		// an end once, so a read that stopped short of it reads on).
		if s.raw != nil || s.local != nil {
			ctx.Send(s.self, readAgainMsg)
			return
		}
		fallthrough
	default:
		if s.mayRead() {
			s.wait()
		}
	}
}

// dataRead sends bytes read from the socket to the peer, one DATA frame a
// buffer, using their credit. A datagram that does not fit a frame or what
// is left of the credit is dropped and counted: a datagram is never cut.
func (s *streamActor) dataRead(ctx actor.Context, bufs []*engine.Buffer, n int) {
	if s.datagram && (n > s.maxRead() || int64(n) > s.credit) {
		s.env.stats.droppedDatagrams.Add(1)
		s.env.log.Debug("datagram dropped", "bytes", n, "frame_limit", s.maxRead())
		putAll(bufs)
		return
	}
	s.credit -= int64(n)
	if s.readDone || s.closed || s.side.Send(engine.TypeData) != nil {
		putAll(bufs)
		return
	}
	// The frames take the buffers; the Scheduler, then the carrier, owns
	// them from here (bufs, a slice the next read reuses, lets go).
	defer clear(bufs)
	s.sendHeldOK(ctx)
	if len(bufs) == 1 { // the frame is the message
		ctx.Send(s.sched, &engine.Frame{Type: engine.TypeData, Stream: s.id, Payload: bufs[0]})
		return
	}
	out := &dataOut{frames: make([]*engine.Frame, len(bufs))}
	for i, b := range bufs {
		out.frames[i] = &engine.Frame{Type: engine.TypeData, Stream: s.id, Payload: b}
	}
	ctx.Send(s.sched, out)
}

// readEnded ends reading: at the socket's end the peer gets FIN; a failure
// resets the stream.
func (s *streamActor) readEnded(ctx actor.Context, err error) {
	s.readDone = true
	s.giveBack(s.credit) // it reads no more
	switch {
	case errors.Is(err, io.EOF):
		s.sendFin(ctx)
	case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
	default:
		s.env.log.Debug("stream socket error", "stream", s.id, "target", s.target, "write", false, "err", err)
		s.reset(ctx, engine.CodeCancelled, err.Error())
	}
	s.maybeClosed(ctx)
}

// sendFin tells the peer this side sends no more, after what it sent.
func (s *streamActor) sendFin(ctx actor.Context) {
	if s.side.CanSend() {
		_ = s.side.Send(engine.TypeFin)
		s.sendHeldOK(ctx)
		ctx.Send(s.sched, engine.NewEmpty(engine.TypeFin, s.id))
	}
}

// giveBack returns n bytes of the reader's grant to the Scheduler.
func (s *streamActor) giveBack(n int64) {
	if n <= 0 {
		return
	}
	s.credit -= n
	s.env.send(s.sched, &creditBack{id: s.id, n: n})
}

// stopReading ends reading without an end from the socket: a waiting
// goroutine is woken by a deadline in the past.
func (s *streamActor) stopReading() {
	s.readDone = true
	if s.poll != nil || s.local != nil {
		s.waiting = false // no goroutine waits: the poller's word is ignored from now on
		return
	}
	if s.waiting && s.netConn != nil {
		_ = s.netConn.SetReadDeadline(time.Now())
	}
}

// flush writes what output collected with one non-blocking write; what the
// socket does not take goes to a writer goroutine.
func (s *streamActor) flush(ctx actor.Context) {
	if len(s.out) == 0 || s.netConn == nil {
		return
	}
	bufs := s.out
	if s.local != nil {
		s.out = bufs[:0]
		if !s.local.push(bufs) { // the application closed its end: nobody reads
			s.reset(ctx, engine.CodeCancelled, "closed by the application")
		}
		return
	}
	total := 0
	for _, b := range bufs {
		total += len(b.B)
	}
	n, whole, err := s.writeNow(bufs)
	if n > 0 {
		traceHop(hopSocketWritten)
	}
	if err != nil {
		putAll(bufs)
		s.out = bufs[:0]
		s.writeFailed(ctx, err)
		return
	}
	// Return what was written; the rest, the first maybe in part, is left.
	k, left := 0, n
	for ; k < whole; k++ {
		left -= len(bufs[k].B)
		engine.PutBuffer(bufs[k])
		bufs[k] = nil
	}
	if k < len(bufs) {
		if left > 0 {
			b := bufs[k]
			b.B = b.B[:copy(b.B, b.B[left:])]
		}
		if s.wq == nil {
			s.wq = newWriteQueue(&s.env.stats.maxQueuedBytes)
			s.wq.noCoalesce = s.datagram
		}
		s.wq.start(bufs[k:]) // the queue owns them now
		clear(bufs[k:])
		s.running++
		env, self, conn, q, datagram := s.env, s.self, s.netConn, s.wq, s.datagram
		env.goroutine(func() { writeLoop(env, self, conn, q, datagram) })
	}
	s.out = bufs[:0]
	if n > 0 {
		s.consumed(ctx, n, total-n)
	}
}

// abort drops what is queued and closes the socket now.
func (s *streamActor) abort(ctx actor.Context) {
	s.shut()
	s.maybeClosed(ctx)
}

// shut drops what is queued, stops the goroutines and the dial and resets
// the socket: the stream was cut short (a RST either way, a failure, its
// link gone). Their reports still come, and the stream ends after the
// last.
func (s *streamActor) shut() {
	if s.closed {
		return
	}
	s.closed = true
	s.readDone, s.writeDone = true, true
	putAll(s.out)
	s.out = nil
	if s.wq != nil {
		s.wq.abort()
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.netConn != nil {
		s.unpoll()
		resetConn(s.netConn)
	}
}

// maybeClosed ends the stream once its socket is done with (both ways
// ended, or shut) and no goroutine or dial of it is left.
func (s *streamActor) maybeClosed(ctx actor.Context) {
	if s.ended || s.running > 0 || !(s.closed || s.readDone && s.writeDone) {
		return
	}
	s.ended = true
	if s.netConn != nil {
		s.unpoll()
		if s.dialedUDP { // another hub's flow to a pool's door here ends with it (udp_end.go)
			s.env.endDoorFlow(s.target, s.netConn.LocalAddr())
		}
		s.netConn.Close()
	}
	s.socketClosed(ctx)
}
