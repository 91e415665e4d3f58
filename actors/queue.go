package actors

import (
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sockmux/sockmux/engine"
)

// writeQueue is what waits for a stream's writer goroutine: the bytes its
// socket did not take at once. The queue also says whether that goroutine
// runs, under the same lock as its contents, so the stream actor and the
// writer agree on who writes to the socket: while the writer runs the
// actor only queues; once the writer found the queue empty it has ended
// and the actor writes itself again. The queue owns the buffers in it; the
// writer returns them to the pool after writing.
type writeQueue struct {
	mu      sync.Mutex
	bufs    []*engine.Buffer
	bytes   int64
	running bool // a writer goroutine owns the socket's write side
	fin     bool // shut the write side after the last buffer
	aborted bool
	hw      *atomic.Int64 // the node's high-water mark of one queue's bytes
	// noCoalesce keeps every buffer apart: each is a datagram.
	noCoalesce bool
}

func newWriteQueue(hw *atomic.Int64) *writeQueue { return &writeQueue{hw: hw} }

// coalesceMax is the largest payload copied onto the tail buffer instead of
// queued on its own: small frames share buffers, so a stream of tiny frames
// cannot pin a buffer each.
const coalesceMax = 2048

// start queues bufs, the bytes the socket did not take, for a writer
// goroutine the caller starts.
func (q *writeQueue) start(bufs []*engine.Buffer) {
	q.mu.Lock()
	q.running = true
	for _, b := range bufs {
		q.add(b)
	}
	q.mu.Unlock()
	q.noteHigh()
}

// push queues b for the running writer and reports true, or reports false
// when no writer runs (the caller writes b itself). A finished or aborted
// queue takes b and returns it to the pool.
func (q *writeQueue) push(b *engine.Buffer) bool {
	q.mu.Lock()
	if q.aborted || q.fin {
		q.mu.Unlock()
		engine.PutBuffer(b)
		return true
	}
	if !q.running {
		q.mu.Unlock()
		return false
	}
	q.add(b)
	q.mu.Unlock()
	q.noteHigh()
	return true
}

// add appends b, with the lock held.
func (q *writeQueue) add(b *engine.Buffer) {
	n := len(b.B)
	if k := len(q.bufs); k > 0 && !q.noCoalesce && n <= coalesceMax && cap(q.bufs[k-1].B)-len(q.bufs[k-1].B) >= n {
		t := q.bufs[k-1]
		t.B = append(t.B, b.B...)
		engine.PutBuffer(b)
	} else {
		q.bufs = append(q.bufs, b)
	}
	q.bytes += int64(n)
}

// noteHigh raises the node's high-water mark to what is queued.
func (q *writeQueue) noteHigh() {
	q.mu.Lock()
	total := q.bytes
	q.mu.Unlock()
	raiseMax(q.hw, total)
}

// raiseMax raises the high-water mark hw to v.
func raiseMax(hw *atomic.Int64, v int64) {
	for {
		m := hw.Load()
		if v <= m || hw.CompareAndSwap(m, v) {
			return
		}
	}
}

// finish asks the running writer to shut the write side once the queue is
// empty, and reports whether a writer runs to do it (if not, the caller
// shuts it).
func (q *writeQueue) finish() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running {
		return false
	}
	q.fin = true
	return true
}

// abort drops everything queued; the writer stops at its next take.
func (q *writeQueue) abort() {
	q.mu.Lock()
	q.aborted = true
	bufs := q.bufs
	q.bufs, q.bytes = nil, 0
	q.mu.Unlock()
	putAll(bufs)
}

// take moves every queued buffer into dst, for the writer. With none
// queued the writer is done: fin says it shuts the write side first; the
// queue no longer counts it as running. ok is false once aborted.
func (q *writeQueue) take(dst []*engine.Buffer) (bufs []*engine.Buffer, fin, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.aborted {
		q.running = false
		return dst, false, false
	}
	if len(q.bufs) > 0 {
		dst = append(dst, q.bufs...)
		clear(q.bufs)
		q.bufs = q.bufs[:0]
		return dst, false, true
	}
	q.running = false
	return dst, q.fin, true
}

// written accounts for bytes the writer has written and returns what is
// still queued.
func (q *writeQueue) written(n int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.bytes -= int64(n)
	return int(q.bytes)
}

// frameQueue is a carrier's write side. The Scheduler hands it frames
// (push), which go out on the carrier whole and in order; it owns them
// until they are written (a sequenced frame's other share stays with the
// Scheduler until the peer acknowledges it).
//
// When nothing is queued or being written and the carrier is a socket,
// push writes the frames at once, with one non-blocking writev, on the
// caller's goroutine (the link's strand): a request that finds its carrier
// idle leaves without starting the writer goroutine. What the socket does
// not take then, and everything on a carrier that is not a socket (TLS,
// pipes, commands), waits here for the writer goroutine, which push starts
// (kick) and which writes it blocking, then ends when it finds nothing
// more. One write is under way at a time (writing), so bytes never
// interleave.
//
// A keyed carrier over a socket (sealedCarrier) gets the same immediate
// write: push hands the frames to the sealed conn's SealNow, which seals
// them into records and makes the one non-blocking write with push's try.
// The frames sealed are the sealed conn's bytes from then on, released
// here; records the socket did not take stay pending in the sealed conn,
// and flush sends the writer goroutine to write them (its WriteBuffers
// writes them first) before anything else is sealed or written, so every
// record is sealed once and goes out once, in order.
type frameQueue struct {
	mu      sync.Mutex
	frames  []*engine.Frame
	off     int  // bytes of frames[0] already written: a write the socket took in part
	writing bool // a write is under way, push's or the writer's
	closed  bool
	last    *engine.Frame // a final frame (GOAWAY) to send before closing
	drain   bool          // write what is queued, then close
	// The writer goroutine runs only while there is work for it: an idle
	// carrier (a hub holds thousands) has none. startWriter starts one (nil
	// until the Carrier actor has started); writer says one runs, and ends
	// at its take that finds nothing to do.
	startWriter func()
	writer      bool

	// flush: records push sealed wait in the sealed conn for the writer;
	// owed is their plaintext, which the writer reports drained.
	flush bool
	owed  int

	// raw is the carrier's socket, written by push; nil: the writer
	// writes everything. sealed is set when the carrier is keyed: push
	// writes raw through it.
	raw     syscall.RawConn
	sealed  sealedCarrier
	version uint8
	// push's scratch for headers and iovecs, and its write's callbacks
	// (made once) and result: one push writes at a time.
	hdrs    []byte
	iovs    [][]byte
	wp      []byte // tryFn's bytes, for writeFn1
	writeFn func(fd uintptr) bool
	write1  func(fd uintptr) bool
	tryFn   func(p []byte) int
	wn      int
	werr    error
}

// sealedCarrier is a keyed carrier (carriers.Sealed): the records' sealing
// is its own; the queue only gives it frames and a way to write now.
type sealedCarrier interface {
	// NetConn is the connection under the records.
	NetConn() net.Conn
	// SealNow seals the concatenation of bufs, or a first part of it, and
	// writes the records with try, which must not wait; it reports how
	// much plaintext it sealed and whether records are left for the next
	// WriteBuffers. err: nothing was sealed, and WriteBuffers fails too.
	SealNow(bufs [][]byte, try func([]byte) int) (sealed int, pending bool, err error)
	// SetSource gives the record reader the socket's own reads.
	SetSource(src io.Reader)
}

// newFrameQueue returns conn's queue; frames carry version v's headers.
func newFrameQueue(conn net.Conn, v uint8) *frameQueue {
	q := &frameQueue{version: v}
	q.writeFn = func(fd uintptr) bool {
		q.wn, q.werr = sysWritev(int(fd), q.iovs)
		return true // one try: never wait here
	}
	switch c := conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		q.raw = rawConn(conn)
	case sealedCarrier:
		switch c.NetConn().(type) {
		case *net.TCPConn, *net.UnixConn:
			if q.raw = rawConn(c.NetConn()); q.raw != nil {
				q.sealed = c
				q.write1 = func(fd uintptr) bool {
					q.wn, q.werr = sysWrite(int(fd), q.wp)
					return true
				}
				q.tryFn = q.try
			}
		}
	}
	return q
}

// try writes what of p the socket takes now, for SealNow: one
// non-blocking write, none at all past the write deadline.
func (q *frameQueue) try(p []byte) int {
	q.wp, q.wn, q.werr = p, 0, nil
	err := q.raw.Write(q.write1)
	n := q.wn
	q.wp, q.werr = nil, nil
	if err != nil {
		return 0
	}
	return n // 0 when the write failed: the writer meets the error
}

// setWriter gives the queue the way to start its writer goroutine, and
// starts one if work is waiting already.
func (q *frameQueue) setWriter(start func()) {
	q.mu.Lock()
	q.startWriter = start
	q.mu.Unlock()
	q.kick()
}

// kick starts the writer goroutine unless one runs, the queue is closed or
// it has none to start yet; the writer finds the work at its take.
func (q *frameQueue) kick() {
	q.mu.Lock()
	start := q.startWriter
	if q.writer || q.closed || start == nil || !q.hasWork() {
		q.mu.Unlock()
		return
	}
	q.writer = true
	q.mu.Unlock()
	start()
}

// hasWork says the writer has something to do, with the lock held.
func (q *frameQueue) hasWork() bool { return len(q.frames) > 0 || q.drain || q.flush }

// push takes fs, handing them over, and returns how many of their bytes
// it wrote at once (the rest goes through the writer, which reports it
// with drained). fs is not kept: the caller may reuse it.
func (q *frameQueue) push(fs []*engine.Frame) int {
	q.mu.Lock()
	if q.closed || q.drain {
		q.mu.Unlock()
		for _, f := range fs {
			f.Release()
		}
		return 0
	}
	if q.raw == nil || q.writing || q.flush || len(q.frames) > 0 {
		q.frames = append(q.frames, fs...)
		q.mu.Unlock()
		q.kick()
		return 0
	}
	q.writing = true
	q.mu.Unlock()
	n, k, off, owed := q.writeNow(fs)
	for _, f := range fs[:k] {
		f.Release()
	}
	q.mu.Lock()
	q.writing = false
	if q.closed { // closed meanwhile: the rest is dropped
		q.mu.Unlock()
		for _, f := range fs[k:] {
			f.Release()
		}
		return n
	}
	if k < len(fs) {
		q.frames = slices.Insert(q.frames, 0, fs[k:]...)
		q.off = off
	}
	if owed > 0 {
		q.flush, q.owed = true, q.owed+owed
	}
	more := q.hasWork()
	q.mu.Unlock()
	if more {
		q.kick()
	}
	return n
}

// writeNow writes what of fs the socket takes now with one writev and
// returns the bytes written, how many frames went whole, and how much of
// the next one. A failed write writes nothing: the writer, writing the
// same frames, meets the error and fails the carrier. On a keyed carrier
// whole and off count what was sealed; n is what was sealed when all its
// records went out, else 0 and owed is what was sealed: the writer writes
// the records left (flush) and reports it.
func (q *frameQueue) writeNow(fs []*engine.Frame) (n, whole, off, owed int) {
	if need := len(fs) * engine.MaxHeaderLen; cap(q.hdrs) < need {
		q.hdrs = make([]byte, need)
	}
	iovs := q.iovs[:0]
	for i, f := range fs {
		if len(iovs)+2 > maxIovecs {
			break
		}
		h := q.hdrs[i*engine.MaxHeaderLen : (i+1)*engine.MaxHeaderLen]
		iovs = append(iovs, h[:f.PutHeader(h, q.version)])
		if f.Len() > 0 {
			iovs = append(iovs, f.Bytes())
		}
	}
	q.iovs = iovs
	var err error
	if q.sealed != nil {
		var pending bool
		n, pending, err = q.sealed.SealNow(iovs, q.tryFn)
		if pending {
			n, owed = 0, n
		}
		whole, off = framesIn(fs, n+owed)
	} else {
		q.wn, q.werr = 0, nil
		if err = q.raw.Write(q.writeFn); err == nil {
			err = q.werr
		}
		n = q.wn
		whole, off = framesIn(fs, n)
	}
	clear(iovs)
	q.iovs = iovs[:0]
	q.werr = nil
	if err != nil || n+owed <= 0 {
		return 0, 0, 0, 0
	}
	return n, whole, off, owed
}

// framesIn is how many of fs the first n bytes of their wire form hold
// whole, and how many bytes of the next one.
func framesIn(fs []*engine.Frame, n int) (whole, off int) {
	for whole < len(fs) && n >= fs[whole].WireLen() {
		n -= fs[whole].WireLen()
		whole++
	}
	return whole, n
}

// finish queues last (may be nil) after what is queued, and asks the writer
// to close the carrier once all is written.
func (q *frameQueue) finish(last *engine.Frame) {
	q.mu.Lock()
	if q.closed || q.drain {
		q.mu.Unlock()
		if last != nil {
			last.Release()
		}
		return
	}
	q.drain, q.last = true, last
	q.mu.Unlock()
	q.kick()
}

// close drops everything queued; a running writer ends at its next take.
func (q *frameQueue) close() {
	q.mu.Lock()
	q.closed = true
	fs := q.frames
	q.frames = nil
	if q.last != nil {
		fs = append(fs, q.last)
		q.last = nil
	}
	q.mu.Unlock()
	for _, f := range fs {
		f.Release()
	}
}

// take moves what waits (frames, or records: flush) into dst for the
// writer, which then writes: off is how much of the first was written
// already; owed is the plaintext of records push sealed that the writer's
// write sends first, which it reports with the frames; drained is true
// when the queue was finished and everything in it is now in dst. ok is
// false, and the writer ends, once closed, or when nothing waits or push
// is writing (push starts a writer again for what it leaves). The writer
// calls written when its write is done.
func (q *frameQueue) take(dst []*engine.Frame) (frames []*engine.Frame, off, owed int, drained, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.writing || !q.hasWork() {
		q.writer = false
		return dst, 0, 0, false, false
	}
	owed, q.owed, q.flush = q.owed, 0, false
	dst = append(dst, q.frames...)
	clear(q.frames)
	q.frames = q.frames[:0]
	off, q.off = q.off, 0
	drained = q.drain
	if drained && q.last != nil {
		dst = append(dst, q.last)
		q.last = nil
	}
	q.writing = true
	return dst, off, owed, drained, true
}

// written ends the writer's write.
func (q *frameQueue) written() {
	q.mu.Lock()
	q.writing = false
	q.mu.Unlock()
}

// budget is how much a link's stream windows may still grow, together
// (an engine.Budget). Streams take from it as their windows grow and give
// back when they end.
type budget struct{ left atomic.Int64 }

// Take reserves up to n bytes and returns what it got.
func (b *budget) Take(n uint32) uint32 {
	for {
		left := b.left.Load()
		got := min(int64(n), left)
		if got <= 0 {
			return 0
		}
		if b.left.CompareAndSwap(left, left-got) {
			return uint32(got)
		}
	}
}

// Give returns n bytes a stream's window had taken.
func (b *budget) Give(n uint32) { b.left.Add(int64(n)) }
