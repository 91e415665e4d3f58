package engine

import "time"

// A Session's carriers: which one each frame takes (the Sender's Stripe,
// as in the daemon's Scheduler), what each brought in (its ACKs' byte
// counts), the clock (Tick), and what a lost or stalled one carried.

// sessionCarrier is what a Session knows of one carrier.
type sessionCarrier struct {
	path    *Path
	in      uint64 // wire bytes of sequenced frames received on it
	ackedIn uint64 // in, when an ACK last said so
}

// AddCarrier says carrier id is up (the link's first, or one that
// joined): frames may go on it from now. A link that does not sequence
// (not CapSeq) has one carrier: a second is not taken, as nothing would
// put its frames back in order.
func (s *Session) AddCarrier(id int) {
	if s.err != nil || s.carriers[id] != nil || !s.cfg.Seq && len(s.carriers) > 0 {
		return
	}
	s.carriers[id] = &sessionCarrier{path: s.out.AddCarrier(id, s.now)}
}

// CarrierRTT says what a carrier's PINGs measured; the least is kept,
// and the Stripe judges an idle path by it.
func (s *Session) CarrierRTT(id int, rtt time.Duration) {
	if c := s.carriers[id]; c != nil && (c.path.RTT == 0 || rtt < c.path.RTT) {
		c.path.RTT = rtt
	}
}

// Written says carrier id's writer took n wire bytes of what Next gave it:
// room for more on that carrier.
func (s *Session) Written(id int, n int) {
	if c := s.carriers[id]; c != nil {
		c.path.Queued -= n
	}
}

// CarrierLost says carrier id is gone: what it carried and the peer has
// not acknowledged goes out again, first, on the others.
func (s *Session) CarrierLost(id int) {
	if s.carriers[id] == nil {
		return
	}
	delete(s.carriers, id)
	if s.err == nil {
		s.resent += s.out.CarrierLost(id)
	}
}

// Tick passes the time in: what follows is decided at now. A carrier that
// has delivered nothing for its stall time while it had bytes in flight
// gets nothing more until it delivers again, and what it holds goes again
// on the others (Stripe.Stalls); Tick returns how many carriers stalled.
func (s *Session) Tick(now time.Time) int {
	s.now = now
	if s.err != nil || !s.cfg.Seq {
		return 0
	}
	stalled, n := s.out.Stalls(nil, now)
	s.resent += n
	return len(stalled)
}

// Next returns the next frame to send and the carrier it goes on, or nil
// when nothing may go now: nothing waits, every carrier that would take it
// holds enough (its writer's HighWater, or what its path delivers in a
// round trip), or (CapSeq) what is unacknowledged is at the peer's reorder
// limit. What a lost carrier carried goes first. The frame is the caller's
// to write and Release; say Written once the carrier's writer took it.
func (s *Session) Next() (*Frame, int) {
	if s.err != nil {
		return nil, 0
	}
	f, p := s.out.Next(s.now)
	if f == nil {
		return nil, 0
	}
	if f.Type == TypeData {
		s.grant() // its room in Grants is the writers' again
	}
	return f, p.ID
}

// Ack returns an ACK for carrier: what arrived in link order, and the
// bytes that carrier brought (the peer's Stripe measures each path by
// them), when there is news on that carrier since its last ACK or again
// is set (an ACK lost with its carrier is said again on a timer); nil
// otherwise. The frame is the caller's, to send on that carrier.
func (s *Session) Ack(carrier int, again bool) *Frame {
	c := s.carriers[carrier]
	if !s.cfg.Seq || s.err != nil || c == nil {
		return nil
	}
	r := s.reorder.Received()
	if r == 0 || c.in == c.ackedIn && !again {
		return nil
	}
	c.ackedIn = c.in
	return NewAck(Ack{Received: r, CarrierBytes: c.in})
}

// Close releases every frame the Session holds.
func (s *Session) Close() {
	s.out.Close()
	if s.cfg.Seq {
		s.reorder.Drop()
	}
}
