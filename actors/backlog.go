package actors

import "sync/atomic"

// backlog counts the frames a carrier's reader has handed its Link and the
// Link has not taken yet, and holds the reader back at a bound. It costs
// an atomic add on each side per frame; only a reader at the bound waits,
// woken when the Link takes the frame that makes room.
type backlog struct {
	n    atomic.Int64
	max  int64
	room chan struct{} // a wake-up for a reader waiting at the bound
}

func newBacklog(max int64) *backlog { return &backlog{max: max, room: make(chan struct{}, 1)} }

// add counts one more frame, waiting while the bound is reached; it
// reports false if stop closed first.
func (b *backlog) add(stop <-chan struct{}) bool {
	for {
		if b.n.Add(1) <= b.max {
			return true
		}
		if b.n.Add(-1) < b.max {
			continue // the Link took one meanwhile
		}
		select {
		case <-b.room:
		case <-stop:
			return false
		}
	}
}

// tryAdd counts one more frame if that stays within the bound, without
// waiting.
func (b *backlog) tryAdd() bool {
	if b.n.Add(1) <= b.max {
		return true
	}
	b.taken()
	return false
}

// taken counts a frame the Link took; leaving the bound wakes the reader.
func (b *backlog) taken() { b.takenN(1) }

// takenN counts n frames taken at once (the Scheduler's, for those the
// Link held until it took what they caused).
func (b *backlog) takenN(n int64) {
	if left := b.n.Add(-n); left < b.max && left+n >= b.max {
		select {
		case b.room <- struct{}{}:
		default:
		}
	}
}
