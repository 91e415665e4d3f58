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
	if c := s.carriers[carrier]; c != nil {
		c.in += uint64(f.WireLen()) // before Push takes f
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
			// A CREDIT past MaxWindow is not taken (Grants.Credit), and
			// the stream goes on with what it had, as in the daemon's
			// Scheduler: it costs this side nothing.
			_ = s.out.Grants.Credit(f.Stream, in.Credit)
		}
	case InboundAck:
		return s.out.Ack(carrier, in.Ack, s.now)
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
		st.reset = true        // what the opener sent before it knew is dropped
		s.settle(f.Stream, st) // ended: out of Grants (refused, it was never counted open)
		r, _ := ParseReason(v.Refuse.Bytes())
		s.events = append(s.events, Event{Kind: EventRefused, Stream: f.Stream, Target: v.Open.Target, Reason: r, Cause: v.Cause})
		s.out.Push(v.Refuse)
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
		s.out.Push(NewReason(TypeRst, id, r.Code, r.Text))
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
