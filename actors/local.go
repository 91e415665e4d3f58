package actors

// The library's streams (package sockmux): a stream whose local end is the
// application itself, not a socket. The application holds a LocalConn; the
// Stream actor holds a localEnd of the same localPipe, as it would hold a
// socket it accepted or dialled. The pipe is a socket made in memory:
//
//   - The application's writes queue pooled buffers in the pipe (up to
//     localUpMax bytes, a socket's send buffer); the Stream takes them
//     (take) as its credit allows, without a copy, when the pipe tells it
//     they are there (localWake), the way the link's poller tells it a
//     socket is readable. The goroutine that wrote runs the link's strand
//     if no other does, so a Write reaches the carrier's write on the
//     application's goroutine.
//   - What the peer sends, the Stream hands to the pipe (push), buffers
//     and all; the application's Read copies them out and returns them to
//     the pool, and what it read is what the Stream grants the peer more
//     credit for (localWake again). So a stream that is not read holds at
//     most its window, as with a socket.
//
// Buffer ownership: a buffer in up or down is the pipe's; take hands it to
// the Stream, push hands it to the pipe, Read returns it to the pool once
// copied out, and whoever ends the pipe (a reset, either side's Close)
// returns what it still holds.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

// localUpMax is how many bytes of the application's writes may wait in the
// pipe for credit before Write waits: a socket's send buffer.
const localUpMax = 256 << 10

// localWake tells a Stream actor its pipe has news: bytes the application
// wrote (or its end), or bytes it read, to grant the peer credit for.
type localWake struct{}

var localWakeMsg = &localWake{}

// LocalConn is the application's end of a stream that has no socket (the
// streams of package sockmux): Node.OpenLocal opens one, and
// Config.AcceptStream is handed those the peer opens. It is a net.Conn.
// Write queues bytes for the stream, which sends them as the peer's
// credit allows; Read takes what the peer sent, and the peer gets credit
// for what was read. CloseWrite sends FIN after what was written; Close
// does too, drops what was not read, and resets the stream if more
// arrives. A stream cut short (a RST either way, an OPEN the peer refused,
// the link gone) makes Read and Write return an error for which
// errors.Is(err, ErrStreamReset) holds, never io.EOF. Past a deadline they
// return os.ErrDeadlineExceeded, a net.Error whose Timeout is true.
type LocalConn struct{ p *localPipe }

// localEnd is the Stream actor's end of a pipe. Its Close, CloseWrite and
// Reset are what the Stream does to a socket when the stream ends; the
// Stream never reads or writes it through Read and Write (take and push
// instead).
type localEnd struct{ p *localPipe }

type localPipe struct {
	user   LocalConn // the application's end, in the pipe's allocation
	end    localEnd  // the Stream's end, likewise
	target string

	mu sync.Mutex
	// The application's writes, for the stream to take.
	up      []*engine.Buffer
	upBytes int
	upEOF   bool // the application shut its write side
	// What the peer sent, for the application's reads; down[0] is read
	// from downOff on.
	down      []*engine.Buffer
	downOff   int
	downBytes int
	downEOF   bool // the peer's FIN
	unread    int  // bytes read that the Stream has not been told of
	// Ends.
	closed  bool // the application closed its end
	aborted bool // and reset it (a splice's far end, splice.go)
	// twin is the other pipe of a splice (splice.go): the application of
	// each pipe is the other one's Stream, so what this Stream pushes is
	// the twin's to take, and what the twin's Stream pushes is this one's.
	twin *localPipe
	gone bool  // the Stream let go of its end
	err  error // the stream was cut short: what Read and Write return
	why  error // the reason a reset gives, when the Stream knows it

	// Waking the Stream, once it has taken its end (attach).
	env    *env
	self   *actor.PID
	strand *strand
	armed  bool // the Stream waits for the application's bytes
	told   bool // a localWake is on its way to it

	// Waking the application: changed is closed (and forgotten) when
	// something changed, made by the first waiter.
	changed chan struct{}
	rd, wd  deadline
	writing bool // a Write is under way: one at a time, so each Write's bytes go together
	readers int  // Reads waiting
	// holdingOK: the Stream holds back its OPEN_OK (sendHeldOK) until it
	// sends a frame, or until a Read waits: a Read that waits may wait
	// for a peer that waits for the OPEN_OK (a SOCKS client of the
	// peer's, waiting for its reply before it sends its request).
	holdingOK bool

	room   []*engine.Buffer // the slice take fills: the Stream's, reused read after read
	frame  int              // the Stream's largest DATA payload (attach): what Write's buffers hold
	window uint32           // the Stream's receive window, as it last said (creditBatch)

	// First arrays of up, down and room, in the pipe's allocation: a
	// stream of a request and a reply never allocates them.
	upArr, downArr, roomArr [1]*engine.Buffer
}

// newLocalPipe makes a stream's two ends.
func newLocalPipe(target string) (*LocalConn, *localEnd) {
	p := &localPipe{target: target}
	p.user.p, p.end.p = p, p
	p.up, p.down, p.room = p.upArr[:0], p.downArr[:0], p.roomArr[:0]
	return &p.user, &p.end
}

// checkTarget says what is wrong with a target an OPEN cannot carry.
func checkTarget(target string) error {
	if target == "" || len(target) > engine.MaxTargetLen || !utf8.ValidString(target) {
		return fmt.Errorf("%w: target %.40q: want 1 to %d bytes of UTF-8", engine.ErrMalformed, target, engine.MaxTargetLen)
	}
	return nil
}

// OpenLocal opens a stream to target, as the peer's Config.AcceptStream
// (or, for a peer that dials, its dialler) will see it, and returns its
// local end. It does not wait for the peer's answer: bytes written at once
// follow the OPEN, and a refusal comes as the error of the first Read or
// Write after it. With no link up it waits, within ctx and the open
// timeout, for one, and for the peer's answer.
func (n *Node) OpenLocal(ctx context.Context, target string) (*LocalConn, error) {
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	user, end := newLocalPipe(target)
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if link, st := n.env.links.newestOn(); link != nil {
		// The Link sends the OPEN on this goroutine, unless another
		// runs its strand (a message to a Link that has just stopped
		// closes end: the application sees a reset).
		ran := st != nil && st.claim()
		n.env.send(link, &openRequest{conn: end, kind: engine.TargetDial, target: target, forward: "library"})
		if ran {
			st.run(strandRunMax)
		}
		return user, nil
	}
	if err := n.openThrough(ctx, end, target); err != nil {
		return nil, err
	}
	return user, nil
}

// acceptLocal hands a stream the peer opened to Config.AcceptStream
// instead of dialling its target; an error it returns refuses the stream.
func (s *streamActor) acceptLocal(ctx actor.Context) {
	var err error
	var end *localEnd
	if s.datagram {
		err = errors.New("UDP streams are not accepted here")
	} else {
		var user *LocalConn
		user, end = newLocalPipe(s.target)
		err = s.env.cfg.AcceptStream(user)
	}
	if err != nil {
		s.env.warn("stream refused", "stream", s.id, "target", s.target, "err", err)
		s.env.stats.refusals.Add(1)
		_ = s.side.Send(engine.TypeOpenFail)
		ctx.Send(s.sched, engine.NewReason(engine.TypeOpenFail, s.id, engine.CodeRefused, err.Error()))
		s.shut()
		s.maybeClosed(ctx)
		return
	}
	s.connected(ctx, end, nil)
}

// anyTarget is the target policy of a node whose AcceptStream takes the
// peer's streams: the application decides what a target means.
type anyTarget struct{}

func (anyTarget) Allows(string) bool { return true }

// openPolicy is what the peer's OPENs are checked against.
func (l *linkActor) openPolicy() engine.Policy {
	if l.env.cfg.AcceptStream != nil {
		return anyTarget{}
	}
	return l.targetPolicy()
}

// closeWith cuts conn short, a client that got no stream: a TCP socket
// is reset (its client must not take the end for a clean one), a
// LocalConn is given err as the reason.
func closeWith(conn net.Conn, err error) {
	if e, ok := conn.(*localEnd); ok {
		e.p.setWhy(err)
		conn.Close()
		return
	}
	resetConn(conn)
}

// The Stream actor's side.

// attach lets the pipe wake the Stream that took its end, whose DATA
// frames carry up to frame bytes and whose receive window is window.
func (p *localPipe) attach(e *env, self *actor.PID, st *strand, frame int, window uint32) {
	p.mu.Lock()
	p.env, p.self, p.strand, p.frame, p.window = e, self, st, frame, window
	wake := p.aborted && p.needWake() // a splice whose other Stream was cut short first
	p.mu.Unlock()
	if wake {
		e.send(self, localWakeMsg)
	}
}

// take hands the Stream up to max bytes of what the application wrote, in
// buffers of at most frame bytes, and says whether the application's
// writes have ended with them.
func (p *localPipe) take(max, frame int, dst []*engine.Buffer) ([]*engine.Buffer, int, bool) {
	bufs, n, eof := p.takeLocked(max, frame, dst)
	if n > 0 && p.twin != nil {
		p.twin.taken(n) // with mu let go: one pipe's lock at a time
	}
	return bufs, n, eof
}

// takeLocked is take's, under mu.
func (p *localPipe) takeLocked(max, frame int, dst []*engine.Buffer) ([]*engine.Buffer, int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	bufs, n, k := dst[:0], 0, 0
	for k < len(p.up) && n < max {
		b := p.up[k]
		if part := min(frame, max-n); len(b.B) > part {
			// The rest stays for the next take; the smaller side is
			// copied to a buffer of its own.
			if rest := len(b.B) - part; rest <= part {
				r := engine.GetBuffer(rest)
				copy(r.B, b.B[part:])
				b.B = b.B[:part]
				p.up[k] = r
				bufs = append(bufs, b)
			} else {
				c := engine.GetBuffer(part)
				copy(c.B, b.B)
				b.B = b.B[:copy(b.B, b.B[part:])]
				bufs = append(bufs, c)
			}
			n += part
			break
		}
		bufs, n = append(bufs, b), n+len(b.B)
		k++
	}
	m := copy(p.up, p.up[k:])
	clear(p.up[m:])
	p.up = p.up[:m]
	p.upBytes -= n
	if n > 0 {
		p.signal() // room for a waiting Write
	}
	return bufs, n, len(p.up) == 0 && p.upEOF
}

// arm has the pipe wake the Stream once the application writes (or has
// written already, or shut its write side).
func (p *localPipe) arm() {
	p.mu.Lock()
	if len(p.up) == 0 && !p.upEOF {
		p.armed = true
		p.mu.Unlock()
		return
	}
	wake := p.needWake()
	p.mu.Unlock()
	if wake {
		p.env.send(p.self, localWakeMsg) // the Stream runs on this strand: it is queued
	}
}

// holdOpenOK says whether the Stream may hold back its OPEN_OK: not if a
// Read waits already.
func (p *localPipe) holdOpenOK() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdingOK = p.readers == 0
	return p.holdingOK
}

// openOKSent says the Stream sent its OPEN_OK: a Read need not ask for it.
func (p *localPipe) openOKSent() {
	p.mu.Lock()
	p.holdingOK = false
	p.mu.Unlock()
}

// woken takes the news a localWake brought: bytes read since the last
// one, and what is still unread; window is the Stream's receive window
// now (creditBatch).
func (p *localPipe) woken(window uint32) (read, unread int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.told, p.window = false, window
	read, p.unread = p.unread, 0
	return read, p.downBytes
}

// push hands the application what the peer sent; the pipe owns bufs from
// here. It reports false if the application has closed its end (the
// bytes are dropped).
func (p *localPipe) push(bufs []*engine.Buffer) bool {
	if p.twin != nil {
		return p.pushTwin(bufs)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.err != nil {
		putAll(bufs)
		return !p.closed
	}
	for _, b := range bufs {
		p.down = append(p.down, b)
		p.downBytes += len(b.B)
	}
	clear(bufs)
	p.signal()
	return true
}

// setWhy is the reason the next reset gives.
func (p *localPipe) setWhy(err error) {
	p.mu.Lock()
	if p.why == nil {
		p.why = err
	}
	p.mu.Unlock()
}

// cutShort ends the pipe with a reset, unless it has ended already: what
// it holds goes back to the pool, and every waiter is woken.
func (p *localPipe) cutShort(dflt error) {
	if p.cutShortLocked(dflt) && p.twin != nil {
		p.twin.abort() // with mu let go: one pipe's lock at a time
	}
}

// cutShortLocked is cutShort's, under mu; it reports whether it cut.
func (p *localPipe) cutShortLocked(dflt error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone || p.err != nil {
		return false
	}
	why := p.why
	if why == nil {
		why = dflt
	}
	p.err = fmt.Errorf("%w: %w", ErrStreamReset, why)
	p.dropAll()
	p.signal()
	return true
}

// dropAll returns what the pipe holds, both ways, to the pool, with mu held.
func (p *localPipe) dropAll() {
	putAll(p.up)
	putAll(p.down)
	p.up, p.down = nil, nil
	p.upBytes, p.downBytes, p.downOff = 0, 0, 0
}

// needWake, with mu held, says whether the caller is to send the Stream a
// localWake (after unlocking): it has its end, and none is on its way.
func (p *localPipe) needWake() bool {
	if p.self == nil || p.told || p.gone {
		return false
	}
	p.told = true
	return true
}

// tell sends the Stream a localWake from a goroutine of the application,
// which runs the link's strand unless another goroutine does: the Stream
// acts on it on this goroutine.
func (p *localPipe) tell() {
	ran := p.strand != nil && p.strand.claim()
	p.env.send(p.self, localWakeMsg)
	if ran {
		p.strand.run(strandRunMax)
	}
}

// signal wakes the application's waiters, with mu held.
func (p *localPipe) signal() {
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// waitCh is what a waiter of the application waits on, with mu held.
func (p *localPipe) waitCh() chan struct{} {
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.changed
}

func (e *localEnd) Read([]byte) (int, error)  { return 0, errLocalIO }
func (e *localEnd) Write([]byte) (int, error) { return 0, errLocalIO }

// CloseWrite is the peer's FIN: the application reads to io.EOF.
func (e *localEnd) CloseWrite() error {
	p := e.p
	p.mu.Lock()
	p.downEOF = true
	p.signal()
	p.mu.Unlock()
	if p.twin != nil {
		p.twin.endUp() // the other Stream sends a FIN after what it has
	}
	return nil
}

// Reset is the stream cut short while it still had the pipe.
func (e *localEnd) Reset() { e.p.cutShort(errLinkLost) }

// Close is the Stream letting go of the pipe: after the stream ended, or
// (with no FIN from the peer) cut short.
func (e *localEnd) Close() error {
	p := e.p
	if !p.peerEnded() {
		p.cutShort(errors.New("the stream ended before the peer finished it"))
	}
	p.mu.Lock()
	p.gone = true
	putAll(p.up)
	p.up, p.upBytes = nil, 0
	p.signal()
	p.mu.Unlock()
	return nil
}

func (p *localPipe) peerEnded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.downEOF
}

func (e *localEnd) LocalAddr() net.Addr              { return localAddr(e.p.target) }
func (e *localEnd) RemoteAddr() net.Addr             { return localAddr(e.p.target) }
func (e *localEnd) SetDeadline(time.Time) error      { return nil }
func (e *localEnd) SetReadDeadline(time.Time) error  { return nil }
func (e *localEnd) SetWriteDeadline(time.Time) error { return nil }

// ResetError is the peer's reason for resetting a stream.
type ResetError struct{ Reason engine.Reason }

func (e *ResetError) Error() string { return "reset by the peer: " + e.Reason.String() }

// Unwrap is the error the reason's code stands for (engine.ErrCancelled,
// ...), for errors.Is.
func (e *ResetError) Unwrap() error { return e.Reason.Code.Err() }

// readLocal takes what the application wrote, up to the credit, and sends
// it on; with nothing there the pipe wakes the Stream when there is.
func (s *streamActor) readLocal(ctx actor.Context) {
	max := int(min(s.credit, int64(s.maxRead()*readFrames)))
	bufs, n, eof := s.local.take(max, s.maxRead(), s.local.room)
	s.local.room = bufs[:0]
	if n == 0 && !eof {
		s.wait()
		return
	}
	var err error
	if eof {
		err = io.EOF
	}
	s.readOn(ctx, bufs, n, max, err)
}

// localWoken takes a localWake: credit for what the application read, and
// a read if the Stream waited for its writes.
func (s *streamActor) localWoken(ctx actor.Context) {
	if s.local == nil {
		return
	}
	if s.local.wasAborted() {
		s.reset(ctx, engine.CodeCancelled, "reset at the other end of the splice")
		return
	}
	s.sendHeldOK(ctx) // the application waits to read: the peer may wait for it
	if read, unread := s.local.woken(s.side.Window()); read > 0 {
		s.consumed(ctx, read, unread)
	}
	if s.waiting {
		s.waiting = false
		s.readNow(ctx)
	}
}

// sendHeldOK sends the OPEN_OK an accepted stream of the library held
// back, before the stream's first DATA or FIN, or once the application
// waits to read (localPipe.holdOpenOK): the two then leave in one carrier
// write, where an OPEN_OK sent at accept time took a write (and a wake-up
// of the peer's reader) of its own. A stream reset first never sends it:
// the RST stands for it.
func (s *streamActor) sendHeldOK(ctx actor.Context) {
	if !s.okHeld {
		return
	}
	s.okHeld = false
	if s.side.Done() {
		return
	}
	s.local.openOKSent()
	ctx.Send(s.sched, engine.NewEmpty(engine.TypeOpenOK, s.id))
}
