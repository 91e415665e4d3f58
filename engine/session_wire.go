package engine

// A Session's side of the wire: frames in (Receive), frames out (Next,
// Ack), carriers lost (CarrierLost), and the end (Close).

// Receive takes f, a frame that arrived on carrier, and acts on it; the
// Session owns f from here. On a CapSeq link sequenced frames are put in
// link order first. An error is the peer breaking the protocol (it
// matches ErrProtocol): the link ends with it, and every later call
// returns it.
func (s *Session) Receive(carrier int, f *Frame) error {
	if s.err != nil {
		f.Release()
		return s.err
	}
	defer s.grant()
	if !s.cfg.Seq || !f.Type.Sequenced() {
		return s.fail(s.handle(carrier, f))
	}
	if err := s.reorder.Push(f); err != nil {
		return s.fail(err)
	}
	for f := s.reorder.Pop(); f != nil; f = s.reorder.Pop() {
		if err := s.handle(carrier, f); err != nil {
			return s.fail(err)
		}
	}
	return nil
}

func (s *Session) fail(err error) error {
	if err != nil && s.err == nil {
		s.err = err
	}
	return err
}

// handle acts on one frame in link order, and releases it unless an
// event hands it on.
func (s *Session) handle(carrier int, f *Frame) error {
	in, err := ClassifyInbound(f, s.cfg.Seq)
	if !in.KeepsFrame() || err != nil {
		f.Release()
	}
	if err != nil {
		return err
	}
	switch in.Kind {
	case InboundOpen:
		return s.peerOpen(f)
	case InboundStream:
		return s.streamFrame(f)
	case InboundCredit:
		if st := s.streams[f.Stream]; st != nil && !st.reset {
			if err := s.grants.Credit(f.Stream, in.Credit); err != nil {
				return err
			}
		}
	case InboundAck:
		return s.rs.Ack(in.Ack.Received)
	case InboundGoAway:
		if s.peer == nil {
			r := in.Reason
			s.peer = &r
			s.events = append(s.events, Event{Kind: EventGoAway, Reason: r})
		}
	case InboundPing, InboundPong, InboundBind, InboundUnbind, InboundBindReply:
		// Liveness (Silence) and reverse forwards (PeerBind) are decided
		// by their own engines; the caller routes these before Receive.
	}
	return nil
}

// peerOpen decides on the peer's OPEN (Opens.PeerOpen): a stream the
// local side then Accepts or Refuses, or a refusal sent at once.
func (s *Session) peerOpen(f *Frame) error {
	defer f.Release()
	v := s.opens.PeerOpen(f.Stream, f.Bytes(), OpenRequest{Policy: s.cfg.Policy, RecvWindow: s.cfg.Window, Closing: s.away})
	if v.Err != nil {
		return v.Err
	}
	st := s.newStream(NewAccepter(f.Stream))
	_ = st.side.Recv(TypeOpen) // a new accepter may always take its OPEN
	if v.Refuse != nil {
		_ = st.side.Send(v.Refuse.Type)
		st.reset = true // what the opener sent before it knew is dropped
		r, _ := ParseReason(v.Refuse.Bytes())
		s.events = append(s.events, Event{Kind: EventRefused, Stream: f.Stream, Target: v.Open.Target, Reason: r, Cause: v.Cause})
		s.q.Push(v.Refuse)
		return nil
	}
	s.events = append(s.events, Event{Kind: EventOpened, Stream: f.Stream, Target: v.Target})
	if data := v.Open.Data; len(data) > 0 {
		if err := st.side.Early(len(data)); err != nil {
			return err
		}
		st.unread += len(data)
		s.events = append(s.events, Event{Kind: EventData, Stream: f.Stream, Frame: newFrame(TypeData, f.Stream, data)})
	}
	return nil
}

// streamFrame is OPEN_OK, OPEN_FAIL, DATA, FIN or RST for a stream: its
// StreamSide decides (Arrive); one for a stream that ended (a reset
// crossed it) or that this side never had is dropped, and one that breaks
// the stream's rules resets that stream only.
func (s *Session) streamFrame(f *Frame) error {
	st := s.streams[f.Stream]
	if st == nil {
		f.Release()
		return nil
	}
	id, t := f.Stream, f.Type
	if st.reset && (t == TypeData || t == TypeFin) {
		f.Release() // sent before the peer knew of the reset
		return nil
	}
	a, r := st.side.Arrive(f)
	switch a {
	case ArriveDrop:
		f.Release()
		// The stream had ended: a frame that crossed our reset, or a RST
		// that crossed the stream's clean end, which it now is.
		if t == TypeRst {
			st.reset = true
		}
		return nil
	case ArriveBroken:
		f.Release()
		_ = st.side.Send(TypeRst)
		s.endStream(id, st)
		s.q.Push(NewReason(TypeRst, id, r.Code, r.Text))
		s.events = append(s.events, Event{Kind: EventReset, Stream: id, Reason: r, Cause: brokenCause(r.Code)})
	case ArriveAccepted:
		f.Release()
		s.events = append(s.events, Event{Kind: EventAccepted, Stream: id})
	case ArriveRefused, ArriveReset:
		f.Release()
		if !st.reset {
			s.endStream(id, st)
			s.events = append(s.events, Event{Kind: EventReset, Stream: id, Reason: r})
		}
	case ArriveData:
		st.unread += f.Len()
		s.events = append(s.events, Event{Kind: EventData, Stream: id, Frame: f})
	case ArriveFin:
		f.Release()
		s.events = append(s.events, Event{Kind: EventFin, Stream: id})
	}
	s.settle(id, st)
	return nil
}

// brokenCause names the rule a peer broke, for an EventReset's Cause.
func brokenCause(c Code) string {
	if c == CodeFlowControl {
		return "flow-control"
	}
	return "protocol"
}

// Next returns the next frame to send on carrier, or nil when nothing may
// go now: nothing waits, or (CapSeq) what is unacknowledged is at the
// peer's reorder limit. What a lost carrier carried goes first. The frame
// is the caller's to write and Release.
func (s *Session) Next(carrier int) *Frame {
	if s.err != nil {
		return nil
	}
	if !s.cfg.Seq {
		return s.sent(s.q.Pop())
	}
	if f, _ := s.rs.Peek(); f != nil {
		s.rs.SentAgain(carrier)
		s.resent++
		f.Retain()
		return f
	}
	if s.q.Len() == 0 || !s.rs.Room(s.cfg.MaxData+MaxHeaderLen) {
		return nil
	}
	f := s.sent(s.q.Pop())
	s.rs.Number(f, carrier)
	f.Retain()
	return f
}

// sent accounts for f leaving the queue: a DATA frame's room in Grants is
// free for the writers again.
func (s *Session) sent(f *Frame) *Frame {
	if f != nil && f.Type == TypeData {
		s.grants.Sent(f.Stream, f.Len())
		s.grant()
	}
	return f
}

// Ack returns an ACK of what arrived in order, for carrier, when there is
// news since the last one or again is set (an ACK lost with its carrier
// is said again on a timer); nil otherwise. The frame is the caller's.
func (s *Session) Ack(again bool) *Frame {
	if !s.cfg.Seq || s.err != nil {
		return nil
	}
	r := s.reorder.Received()
	if r == 0 || r == s.acked && !again {
		return nil
	}
	s.acked = r
	return NewAck(Ack{Received: r})
}

// CarrierLost says carrier is gone: what it carried and the peer has not
// acknowledged goes out again, first, on the carriers that pull Next.
func (s *Session) CarrierLost(carrier int) {
	if !s.cfg.Seq || s.err != nil {
		return
	}
	s.rs.Lost(carrier)
}

// Close releases every frame the Session holds.
func (s *Session) Close() {
	if s.cfg.Seq {
		s.rs.Drop()
		s.reorder.Drop()
	}
	for _, f := range s.q.DropAll() {
		f.Release()
	}
}
