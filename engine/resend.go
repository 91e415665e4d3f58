package engine

import "slices"

// Resender is a CapSeq link's sending side: it numbers each sequenced
// frame as it goes out (Unacked), keeps it until the peer acknowledges it,
// holds new frames back while what is unacknowledged is at the peer's
// reorder limit, and puts what a lost or stalled carrier carried first in
// line to go again. The engine's Session and the daemon's Scheduler both
// send through one, so the simulator checks the resend the daemon runs.
//
// Which carrier a frame takes is the caller's (Stripe): the caller Peeks
// what must go again, picks a carrier for it, and says so (SentAgain), or
// checks Room and Numbers a new frame on the carrier it picked.
//
// Ownership: Unacked's, a share of each frame numbered; Peek lends the
// frame, and the caller Retains it for a carrier's writer.
type Resender struct {
	unacked *Unacked
	limit   int      // the peer's reorder limit: unacknowledged wire bytes at most
	resend  []uint64 // sequence numbers to send again, in order
}

// NewResender returns the Resender of a link whose peer holds at most
// limit wire bytes out of order; streamOrder is CapStreamOrder (each frame
// names the one of its stream it follows).
func NewResender(limit int, streamOrder bool) *Resender {
	r := &Resender{unacked: NewUnacked(), limit: limit}
	if streamOrder {
		r.unacked.StreamOrder()
	}
	return r
}

// Room reports whether a new frame of up to wire bytes may be numbered
// now: the peer must be able to hold it, with all it has not
// acknowledged, should the frames before it be lost.
func (r *Resender) Room(wire int) bool { return r.unacked.Bytes()+wire <= r.limit }

// Number numbers f, which goes out on carrier, and keeps a share of it.
func (r *Resender) Number(f *Frame, carrier int) { r.unacked.Number(f, carrier) }

// Peek returns the next frame to send again and its sequence number, or
// nil when none waits; frames acknowledged since they were put in line
// are skipped.
func (r *Resender) Peek() (*Frame, uint64) {
	for len(r.resend) > 0 {
		seq := r.resend[0]
		if f, _ := r.unacked.Get(seq); f != nil {
			return f, seq
		}
		r.resend = r.resend[1:]
	}
	return nil, 0
}

// SentAgain records that the frame Peek returned went out on carrier.
func (r *Resender) SentAgain(carrier int) {
	seq := r.resend[0]
	r.resend = r.resend[1:]
	r.unacked.SentOn(seq, carrier)
}

// Lost puts what carrier carried and the peer has not acknowledged in
// line to go again, in sequence order, once each however often it was
// lost, and returns how many frames it added.
func (r *Resender) Lost(carrier int) int {
	n := len(r.resend)
	r.resend = r.unacked.On(r.resend, carrier)
	if len(r.resend) == n {
		return 0
	}
	slices.Sort(r.resend)
	r.resend = slices.Compact(r.resend)
	return max(len(r.resend)-n, 0)
}

// Ack releases what the peer acknowledged (all up to received): an ACK
// of what was never sent is the peer's error (ErrMalformed).
func (r *Resender) Ack(received uint64) error {
	if err := r.unacked.Ack(received); err != nil {
		return err
	}
	i := 0
	for i < len(r.resend) && r.resend[i] <= received {
		i++
	}
	r.resend = r.resend[i:]
	return nil
}

// Waiting is how many frames are in line to go again.
func (r *Resender) Waiting() int { return len(r.resend) }

// Bytes is the wire size of what the peer has not acknowledged.
func (r *Resender) Bytes() int { return r.unacked.Bytes() }

// Drop releases every frame kept.
func (r *Resender) Drop() {
	r.unacked.Drop()
	r.resend = nil
}
