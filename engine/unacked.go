package engine

import "fmt"

// Unacked is the sending side of link sequencing: it numbers a link's
// sequenced frames and keeps each, with the carrier it last went out on,
// until the peer's ACK says it arrived, so that what a dead carrier carried
// can be sent again on another. It is used by one goroutine (the
// Scheduler).
//
// Ownership: Unacked holds one owner's share of each frame it keeps and
// releases it on ACK (or Drop); whoever it hands a frame to for writing
// must Retain it first.
type Unacked struct {
	next  uint64 // the next sequence number to give
	acked uint64 // everything up to here has arrived
	ring  []unackedEntry
	head  int // index of the entry for acked+1
	n     int
	bytes int
	order *orderer // stream order: what each frame follows (nil: link order)
}

type unackedEntry struct {
	f       *Frame
	carrier int
}

// NewUnacked returns an empty Unacked whose first frame is number 1.
func NewUnacked() *Unacked { return &Unacked{next: 1, ring: make([]unackedEntry, 64)} }

// StreamOrder makes the frames numbered from now on name the frame each
// must follow (order.go): the peer agreed CapStreamOrder.
func (u *Unacked) StreamOrder() {
	if u.order == nil {
		u.order = &orderer{lastOf: make(map[uint32]uint64)}
	}
}

// Number gives f the next sequence number (and, with stream order, the
// frame it follows) and keeps it, as sent on carrier, taking over the
// caller's ownership of it.
func (u *Unacked) Number(f *Frame, carrier int) {
	f.Seq = u.next
	u.next++
	if u.order != nil {
		f.After = u.order.after(f)
	}
	if u.n == len(u.ring) {
		grown := make([]unackedEntry, 2*len(u.ring))
		for i := range u.n {
			grown[i] = u.ring[(u.head+i)%len(u.ring)]
		}
		u.ring, u.head = grown, 0
	}
	u.ring[(u.head+u.n)%len(u.ring)] = unackedEntry{f: f, carrier: carrier}
	u.n++
	u.bytes += f.WireLen()
}

// Bytes is the wire size of the frames kept.
func (u *Unacked) Bytes() int { return u.bytes }

// Len is the number of frames kept.
func (u *Unacked) Len() int { return u.n }

// Acked is the highest sequence number the peer has acknowledged.
func (u *Unacked) Acked() uint64 { return u.acked }

// Next is the sequence number the next frame will get.
func (u *Unacked) Next() uint64 { return u.next }

// Ack releases every frame up to received. Acknowledging a frame never
// sent is a protocol error; an old acknowledgement is ignored.
func (u *Unacked) Ack(received uint64) error {
	if received >= u.next {
		return fmt.Errorf("%w: ACK of frame %d, but only %d were sent", ErrMalformed, received, u.next-1)
	}
	for u.acked < received {
		e := &u.ring[u.head]
		u.bytes -= e.f.WireLen()
		e.f.Release()
		*e = unackedEntry{}
		u.head = (u.head + 1) % len(u.ring)
		u.n--
		u.acked++
	}
	if u.order != nil {
		u.order.acked(received)
	}
	return nil
}

// Get returns the kept frame numbered seq and the carrier it last went out
// on, or nil when it is acknowledged (or was never sent).
func (u *Unacked) Get(seq uint64) (*Frame, int) {
	if seq <= u.acked || seq >= u.next {
		return nil, 0
	}
	e := &u.ring[(u.head+int(seq-u.acked-1))%len(u.ring)]
	return e.f, e.carrier
}

// SentOn records that frame seq went out again, on carrier.
func (u *Unacked) SentOn(seq uint64, carrier int) {
	if seq <= u.acked || seq >= u.next {
		return
	}
	u.ring[(u.head+int(seq-u.acked-1))%len(u.ring)].carrier = carrier
}

// On appends to dst, in order, the sequence numbers of the frames kept that
// last went out on carrier: what it may have lost.
func (u *Unacked) On(dst []uint64, carrier int) []uint64 {
	for i := range u.n {
		if u.ring[(u.head+i)%len(u.ring)].carrier == carrier {
			dst = append(dst, u.acked+1+uint64(i))
		}
	}
	return dst
}

// Drop releases every frame kept.
func (u *Unacked) Drop() {
	for u.n > 0 {
		e := &u.ring[u.head]
		e.f.Release()
		*e = unackedEntry{}
		u.head = (u.head + 1) % len(u.ring)
		u.n--
	}
	u.bytes = 0
	u.acked = u.next - 1
}
