package engine

import (
	"fmt"
	"math"
	"time"
)

// Credit windows. Each direction of each stream has a window: the bytes the
// sender may still send before the receiver grants more with CREDIT. The
// receiver grants what its local socket has consumed, so a stream whose
// reader stops holds at most its window in memory, and no other stream is
// slowed by it.
const (
	// DefaultWindow is the initial per-stream window: 256 KiB.
	DefaultWindow = 256 << 10
	// DefaultMaxWindow is how far a stream's window may grow: 16 MiB.
	DefaultMaxWindow = 16 << 20
	// MaxWindow bounds any window and any single CREDIT.
	MaxWindow = 1 << 30
)

// RecvWindow is the receiving side of one stream's window.
//
// The window grows while it, and not the local reader, limits the stream:
// when the peer has driven its credit down to a quarter of the window or
// less since the last grant, while little waits to be written locally, the
// round trip of the credit is what holds the sender back, and a larger
// window is what it needs. The sign is taken when data arrives, not when
// credit is granted: on a long path the whole window arrives in one burst
// and credit goes out a quarter at a time, so at every grant the peer still
// seems to hold credit although it then waits a round trip for more. A
// stalled reader never grows its window, because its bytes wait in the
// queue.
type RecvWindow struct {
	size    uint32 // the window granted in all
	max     uint32 // how far size may grow
	avail   uint32 // what the peer may still send
	pending uint32 // consumed locally, not yet granted back
	starved bool   // the peer ran (nearly) out of credit, and the window has not grown since
	// lowQueue is the least the local queue held at a write since the
	// last grant: a burst fills the queue for a moment even when the reader
	// keeps up, but a reader that keeps up drains it between bursts.
	lowQueue int
	// An epoch ends when a whole window has been consumed; one shorter
	// than two round trips means the window, not the path, sets the pace.
	epochStart time.Time
	epochBytes uint64
}

// NewRecvWindow returns a window of size bytes, all granted, that may grow
// to max (max below size means it never grows).
func NewRecvWindow(size, maxSize uint32) RecvWindow {
	return RecvWindow{size: size, max: max(size, maxSize), avail: size, lowQueue: math.MaxInt}
}

// Receive accounts for n bytes arriving from the peer. More than the peer
// was granted is ErrFlowControl.
func (w *RecvWindow) Receive(n int) error {
	if n < 0 || uint64(n) > uint64(w.avail) {
		return fmt.Errorf("%w: %d bytes with %d of credit", ErrFlowControl, n, w.avail)
	}
	w.avail -= uint32(n)
	if w.avail <= w.size/4 {
		w.starved = true
	}
	return nil
}

// Consumed accounts for n bytes written to the local socket at now, with
// queued bytes still waiting to be written, and returns the credit to grant
// now: nothing until a quarter of the window is due, so a stream of small
// writes does not send a CREDIT per write. grow is how much the window asks
// to grow by: the caller takes what its budget allows and passes it to Grow
// before sending the credit.
//
// The window doubles, while the local reader keeps up, when a whole window
// was consumed in less than two round trips (rtt, the link's; 0 when not
// known yet), the receiver-side auto-tuning of QUIC and HTTP/2; or when
// the peer ran out of credit, which is what shows on a path too short for
// the round trip to be measured well.
func (w *RecvWindow) Consumed(n, queued int, now time.Time, rtt time.Duration) (credit, grow uint32) {
	w.pending += uint32(n)
	w.lowQueue = min(w.lowQueue, queued)
	w.epochBytes += uint64(n)
	if w.epochStart.IsZero() {
		w.epochStart = now
	}
	if w.pending < w.size/4 {
		return 0, 0
	}
	fast := false
	if w.epochBytes >= uint64(w.size) {
		fast = rtt > 0 && now.Sub(w.epochStart) < 2*rtt
		w.epochStart, w.epochBytes = now, 0
	}
	if w.size < w.max && (fast || w.starved || w.avail <= w.size/4) && w.lowQueue <= int(w.size/4) {
		grow = min(w.size, w.max-w.size)
		w.starved = false
	}
	w.lowQueue = math.MaxInt
	c := w.pending
	w.pending = 0
	w.avail += c
	return c, grow
}

// Grow enlarges the window by n (what the link's budget allowed of GrowBy)
// and returns it as extra credit to send with the next grant.
func (w *RecvWindow) Grow(n uint32) uint32 {
	n = min(n, w.max-w.size)
	w.size += n
	w.avail += n
	return n
}

// Avail is the credit the peer holds.
func (w *RecvWindow) Avail() uint32 { return w.avail }

// Size is the window size.
func (w *RecvWindow) Size() uint32 { return w.size }

// SendWindow is the sending side of one stream's window.
type SendWindow struct {
	avail int64
}

// NewSendWindow returns a window holding n bytes of credit.
func NewSendWindow(n uint32) SendWindow { return SendWindow{avail: int64(n)} }

// Add accounts for a CREDIT of n. A window past MaxWindow is the peer's
// error.
func (w *SendWindow) Add(n uint32) error {
	if w.avail+int64(n) > MaxWindow {
		return fmt.Errorf("%w: credit of %d overflows a window of %d", ErrFlowControl, n, w.avail)
	}
	w.avail += int64(n)
	return nil
}

// Take accounts for n bytes sent; it reports false, taking nothing, when
// the window holds less than n.
func (w *SendWindow) Take(n int) bool {
	if int64(n) > w.avail {
		return false
	}
	w.avail -= int64(n)
	return true
}

// Avail is the credit left.
func (w *SendWindow) Avail() int64 { return w.avail }
