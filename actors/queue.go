package actors

import (
	"sync"
	"sync/atomic"

	"sockmux/engine"
)

// gate holds the send credit a Connection's reader may use. The Scheduler
// grants it by message to the Connection actor, which adds it here; the
// reader goroutine waits on it before each read, so bytes are read from the
// socket only while the stream has credit.
type gate struct {
	mu     sync.Mutex
	avail  int64
	closed bool
	wake   chan struct{}
	stalls *atomic.Int64 // counts waits for credit
}

func newGate(stalls *atomic.Int64) *gate { return &gate{wake: make(chan struct{}, 1), stalls: stalls} }

func (g *gate) add(n int64) {
	g.mu.Lock()
	g.avail += n
	g.mu.Unlock()
	g.signal()
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.signal()
}

func (g *gate) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// wait blocks until there is credit and returns it, or returns false once
// the gate is closed.
func (g *gate) wait() (int64, bool) {
	for {
		g.mu.Lock()
		avail, closed := g.avail, g.closed
		g.mu.Unlock()
		if closed {
			return 0, false
		}
		if avail > 0 {
			return avail, true
		}
		if g.stalls != nil {
			g.stalls.Add(1)
		}
		<-g.wake
	}
}

// tryTake takes n bytes of credit if there are that many.
func (g *gate) tryTake(n int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.avail < n {
		return false
	}
	g.avail -= n
	return true
}

func (g *gate) take(n int64) {
	g.mu.Lock()
	g.avail -= n
	g.mu.Unlock()
}

// writeQueue is what a Connection's writer goroutine writes to its socket.
// The queue owns the buffers in it; the writer returns them after writing.
type writeQueue struct {
	mu      sync.Mutex
	bufs    []*engine.Buffer
	bytes   int64
	fin     bool // close the write side after the last buffer
	aborted bool
	wake    chan struct{}
	hw      *atomic.Int64 // the node's high-water mark of one queue's bytes
	// noCoalesce keeps every buffer apart: each is a datagram.
	noCoalesce bool
}

func newWriteQueue(hw *atomic.Int64) *writeQueue {
	return &writeQueue{wake: make(chan struct{}, 1), hw: hw}
}

// coalesceMax is the largest payload copied onto the tail buffer instead of
// queued on its own: small frames share buffers, so a stream of tiny frames
// cannot pin a buffer each.
const coalesceMax = 2048

func (q *writeQueue) push(b *engine.Buffer) {
	q.mu.Lock()
	if q.aborted || q.fin {
		q.mu.Unlock()
		engine.PutBuffer(b)
		return
	}
	n := len(b.B)
	if k := len(q.bufs); k > 0 && !q.noCoalesce && n <= coalesceMax && cap(q.bufs[k-1].B)-len(q.bufs[k-1].B) >= n {
		t := q.bufs[k-1]
		t.B = append(t.B, b.B...)
		engine.PutBuffer(b)
	} else {
		q.bufs = append(q.bufs, b)
	}
	q.bytes += int64(n)
	total := q.bytes
	q.mu.Unlock()
	for {
		m := q.hw.Load()
		if total <= m || q.hw.CompareAndSwap(m, total) {
			break
		}
	}
	q.signal()
}

func (q *writeQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// finish asks the writer to close the write side once the queue is empty.
func (q *writeQueue) finish() {
	q.mu.Lock()
	q.fin = true
	q.mu.Unlock()
	q.signal()
}

// abort drops everything queued and stops the writer.
func (q *writeQueue) abort() {
	q.mu.Lock()
	q.aborted = true
	bufs := q.bufs
	q.bufs, q.bytes = nil, 0
	q.mu.Unlock()
	for _, b := range bufs {
		engine.PutBuffer(b)
	}
	q.signal()
}

// take waits for buffers and returns all of them, moving them into dst. fin
// is true when the queue is finished and empty; ok is false once aborted.
func (q *writeQueue) take(dst []*engine.Buffer) (bufs []*engine.Buffer, fin, ok bool) {
	for {
		q.mu.Lock()
		if q.aborted {
			q.mu.Unlock()
			return dst, false, false
		}
		if len(q.bufs) > 0 {
			dst = append(dst, q.bufs...)
			clear(q.bufs)
			q.bufs = q.bufs[:0]
			q.mu.Unlock()
			return dst, false, true
		}
		fin := q.fin
		q.mu.Unlock()
		if fin {
			return dst, true, true
		}
		<-q.wake
	}
}

// written accounts for bytes the writer has written and returns what is
// still queued.
func (q *writeQueue) written(n int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.bytes -= int64(n)
	return int(q.bytes)
}

// frameQueue is what a Carrier's writer goroutine sends. The Scheduler
// pushes frames into it (handing them over) while the carrier's bytes in
// flight are below its high-water mark.
type frameQueue struct {
	mu     sync.Mutex
	frames []*engine.Frame
	closed bool
	last   *engine.Frame // a final frame (GOAWAY) to send before closing
	drain  bool          // write what is queued, then close
	wake   chan struct{}
}

func newFrameQueue() *frameQueue { return &frameQueue{wake: make(chan struct{}, 1)} }

func (q *frameQueue) push(fs []*engine.Frame) {
	q.mu.Lock()
	if q.closed || q.drain {
		q.mu.Unlock()
		for _, f := range fs {
			f.Release()
		}
		return
	}
	q.frames = append(q.frames, fs...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
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
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close drops everything queued and stops the writer.
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
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take waits for frames; drained is true when the queue was finished and
// everything in it is now in dst; ok is false once closed.
func (q *frameQueue) take(dst []*engine.Frame) (frames []*engine.Frame, drained, ok bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return dst, false, false
		}
		if len(q.frames) > 0 || q.drain {
			dst = append(dst, q.frames...)
			clear(q.frames)
			q.frames = q.frames[:0]
			drained = q.drain
			if drained && q.last != nil {
				dst = append(dst, q.last)
				q.last = nil
			}
			q.mu.Unlock()
			return dst, drained, true
		}
		q.mu.Unlock()
		<-q.wake
	}
}

// budget is how much a link's stream windows may still grow, together.
// Streams take from it as their windows grow and give back when they end.
type budget struct{ left atomic.Int64 }

// take reserves up to n bytes and returns what it got.
func (b *budget) take(n uint32) uint32 {
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

func (b *budget) give(n uint32) { b.left.Add(int64(n)) }
