package engine

import "time"

// Interactivity tells requests from bulk on one side of a link, so that a
// striped link's caps and ACKs tighten only while requests flow beside
// bulk (see capGain and AckDelayFor). A small DATA frame (SmallFrame or
// less) is a request unless its stream carried a large one within
// InteractiveFor: a bulk stream's reads come out small now and then (the
// end of its credit, a socket drained for a moment), and those must not
// count, or one bulk stream alone would run on the tight caps. The side is
// interactive for InteractiveFor after its last request.
//
// It reads no clock (now is passed in) and is not safe for concurrent use.
type Interactivity struct {
	bulkAt  map[uint32]time.Time // each stream's last large DATA frame
	sweepAt int                  // bulkAt's size at which expired entries go
	last    time.Time            // the last request
}

// ACK delays: how long a receiver may hold an arrival's ACK. A link of one
// carrier is not capped, so its ACKs only free resend buffers and can
// wait (fewer ACK frames, fewer wake-ups), as can those of a striped link
// that carries only bulk. While a striped link is interactive the
// sender's caps must cover what the peer holds unacknowledged, and every
// millisecond of that is a millisecond of bottleneck queue a request
// waits behind.
const (
	BulkAckDelay        = 5 * time.Millisecond
	InteractiveAckDelay = time.Millisecond
	// InteractiveFor is how long after a request (Interactivity) a
	// side counts as interactive: the sender after it sent one, the
	// receiver after one arrived; and how long after its last large
	// DATA frame a stream's small ones are not requests.
	InteractiveFor = 250 * time.Millisecond
)

// AckDelayFor is the longest a receiver with the given number of carriers
// holds an ACK: InteractiveAckDelay on a striped link while it is
// interactive, BulkAckDelay otherwise.
func AckDelayFor(carriers int, interactive bool) time.Duration {
	if carriers > 1 && interactive {
		return InteractiveAckDelay
	}
	return BulkAckDelay
}

// minSweep is the least number of streams bulkAt holds before it drops
// the entries that no longer count.
const minSweep = 64

// Frame notes a DATA frame of stream of wire bytes going or coming at now.
func (iv *Interactivity) Frame(stream uint32, wire int, now time.Time) {
	if wire <= SmallFrame {
		if at, ok := iv.bulkAt[stream]; !ok || now.Sub(at) >= InteractiveFor {
			iv.last = now
		}
		return
	}
	if iv.bulkAt == nil {
		iv.bulkAt, iv.sweepAt = make(map[uint32]time.Time), minSweep
	}
	if _, ok := iv.bulkAt[stream]; !ok && len(iv.bulkAt) >= iv.sweepAt {
		iv.sweep(now)
	}
	iv.bulkAt[stream] = now
}

// sweep drops the streams whose last large frame no longer counts, so
// bulkAt holds about the streams that carried bulk lately however many
// streams come and go.
func (iv *Interactivity) sweep(now time.Time) {
	for id, at := range iv.bulkAt {
		if now.Sub(at) >= InteractiveFor {
			delete(iv.bulkAt, id)
		}
	}
	iv.sweepAt = max(minSweep, 2*len(iv.bulkAt))
}

// Active says whether a request went or came within InteractiveFor of now.
func (iv *Interactivity) Active(now time.Time) bool {
	return !iv.last.IsZero() && now.Sub(iv.last) < InteractiveFor
}
