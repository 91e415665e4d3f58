package engine

import "fmt"

// Reorder puts a link's sequenced frames back in order. A frame is
// delivered once what it must follow has been: on a link in link order,
// every frame numbered before it; with stream order (CapStreamOrder,
// order.go), the one frame its After names, so a frame of one stream does
// not wait for another stream's frame that crosses a slower carrier.
// Frames that must wait are held, up to a limit of bytes; copies of frames
// already delivered are dropped. It is used by one goroutine (the Link
// actor, or the Session).
//
// Received, what ACKs report, stays the highest number below which every
// frame has been delivered: the sender's unacknowledged frames, and what a
// resumed link sends again, are counted from it, and a copy of a frame
// delivered ahead of it is known by done.
type Reorder struct {
	next    uint64              // the lowest sequence number not delivered
	ready   []*Frame            // delivered, for Pop, from head
	head    int                 // the next of ready to pop
	held    map[uint64]*Frame   // waiting for what they follow
	waiters map[uint64][]uint64 // a frame's number → the held frames that follow it (stream order)
	done    map[uint64]int      // delivered ahead of next: their wire sizes
	work    []*Frame            // deliver's worklist
	bytes   int                 // held
	early   int                 // delivered ahead of next (done's sizes)
	limit   int
	ahead   int // frames delivered ahead of link order
}

// NewReorder returns a Reorder that holds at most limit bytes (WireLen) out
// of order.
func NewReorder(limit int) *Reorder {
	return &Reorder{next: 1, held: make(map[uint64]*Frame), limit: limit}
}

// Received is the highest sequence number below which (and at which)
// every frame has been delivered.
func (r *Reorder) Received() uint64 { return r.next - 1 }

// Ahead is how many frames were delivered before one numbered lower:
// what stream order saved from waiting.
func (r *Reorder) Ahead() int { return r.ahead }

// Held is the bytes waiting out of order.
func (r *Reorder) Held() int { return r.bytes }

// Push takes f, a sequenced frame, and ownership of it; Pop then returns
// the frames now deliverable. A frame already delivered or already held is
// released. A frame that would take the held bytes past the limit is a
// protocol error: the sender keeps its unacknowledged bytes below it.
func (r *Reorder) Push(f *Frame) error {
	if f.Seq < r.next || r.seen(f.Seq) {
		f.Release()
		return nil
	}
	if f.Seq == r.next { // in order (what it follows is below it): the usual case
		r.deliver(f)
		return nil
	}
	// Past next, what is held and what was delivered ahead both count
	// against the limit: the sender keeps all of it unacknowledged, so a
	// peer that never fills the gap cannot grow done for ever.
	n := f.WireLen()
	if r.bytes+r.early+n > r.limit {
		f.Release()
		return fmt.Errorf("%w: frame %d arrived %d frames early, past the reorder limit of %d bytes",
			ErrFlowControl, f.Seq, f.Seq-r.next, r.limit)
	}
	if f.After != 0 {
		if dep := f.Seq - uint64(f.After); dep < r.next || r.delivered(dep) {
			r.deliver(f)
			return nil
		}
	}
	r.held[f.Seq] = f
	r.bytes += n
	if f.After != 0 {
		if r.waiters == nil {
			r.waiters = make(map[uint64][]uint64)
		}
		dep := f.Seq - uint64(f.After)
		r.waiters[dep] = append(r.waiters[dep], f.Seq)
	}
	return nil
}

// seen reports whether frame seq, at or past next, is held or delivered.
func (r *Reorder) seen(seq uint64) bool {
	if _, ok := r.held[seq]; ok {
		return true
	}
	return r.delivered(seq)
}

func (r *Reorder) delivered(seq uint64) bool {
	_, ok := r.done[seq]
	return ok
}

// deliver makes f ready, and with it every held frame that was waiting
// only for it, or for the frames that makes ready in turn.
func (r *Reorder) deliver(f *Frame) {
	r.work = append(r.work[:0], f)
	for len(r.work) > 0 {
		g := r.work[len(r.work)-1]
		r.work[len(r.work)-1] = nil
		r.work = r.work[:len(r.work)-1]
		r.ready = append(r.ready, g)
		if g.Seq == r.next {
			r.next++
			r.advance()
		} else {
			r.ahead++
			if r.done == nil {
				r.done = make(map[uint64]int)
			}
			n := g.WireLen()
			r.done[g.Seq] = n
			r.early += n
		}
		if ws, ok := r.waiters[g.Seq]; ok {
			delete(r.waiters, g.Seq)
			for _, s := range ws {
				r.work = append(r.work, r.unhold(s))
			}
		}
	}
}

// advance moves next over the frames delivered ahead of it, and hands
// deliver the held frame in link order that next reaches.
func (r *Reorder) advance() {
	for len(r.done) > 0 {
		n, ok := r.done[r.next]
		if !ok {
			break
		}
		delete(r.done, r.next)
		r.early -= n
		r.next++
	}
	if h := r.held[r.next]; h != nil && h.After == 0 {
		r.work = append(r.work, r.unhold(r.next))
	}
}

func (r *Reorder) unhold(seq uint64) *Frame {
	f := r.held[seq]
	delete(r.held, seq)
	r.bytes -= f.WireLen()
	return f
}

// Pop returns the next frame delivered, or nil when none is.
func (r *Reorder) Pop() *Frame {
	if r.head == len(r.ready) {
		return nil
	}
	f := r.ready[r.head]
	r.ready[r.head] = nil
	r.head++
	if r.head == len(r.ready) {
		r.ready, r.head = r.ready[:0], 0
	}
	return f
}

// Drop releases every frame held, and those delivered but not popped.
func (r *Reorder) Drop() {
	for f := r.Pop(); f != nil; f = r.Pop() {
		f.Release()
	}
	for s, f := range r.held {
		f.Release()
		delete(r.held, s)
	}
	clear(r.waiters)
	clear(r.done)
	r.bytes, r.early = 0, 0
}
