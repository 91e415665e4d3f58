package engine

import "time"

// Sender is a link's sending side with no I/O: the frames waiting (Queue,
// its order and fairness), what each stream's local reader or writer may
// take (Grants), and on a CapSeq link numbering and resend (Resender) and
// the carrier each frame takes (Stripe). It decides which frame goes next
// and on which carrier; the caller writes it. The daemon's Scheduler actor
// owns one and so does Session, so the carrier choice the simulator checks
// is the daemon's.
//
// Ownership: Push takes over the frame it is given. A frame Next returns
// is the caller's to write and Release; on a CapSeq link the Resender
// keeps a share of each sequenced frame until the peer acknowledges it.
//
// A Sender is used by one goroutine.
type Sender struct {
	// Queue is the frames waiting for a carrier, in Queue's order.
	Queue *Queue
	// Grants is what each stream may take for sending, within the link's
	// limit.
	Grants *Grants
	// Stripe is the carriers' paths and the choice among them.
	Stripe Stripe

	rs        *Resender // CapSeq only
	highWater int       // the most a carrier's writer holds before Pick passes it over
	maxWire   int       // the most wire bytes one frame takes
	// carry is the rest of a DATA frame cut for a slow path
	// (Stripe.Chunk), not numbered yet: it goes next.
	carry *Frame
	// own says the frame pick chose is a stream's own DATA (not the rest
	// of one cut, nor one sent again); on a striped link such frames tell
	// requests from bulk (Stripe.Interactive).
	own         bool
	interactive Interactivity
}

// SenderConfig is what a Sender is set up with.
type SenderConfig struct {
	// Limit and PerStream bound what the link holds for sending (Grants).
	Limit, PerStream int64
	// Seq is CapSeq: frames are numbered, kept until acknowledged and sent
	// again after a carrier is lost; PeerReorder is the peer's reorder
	// limit, which bounds what is unacknowledged; StreamOrder is
	// CapStreamOrder.
	Seq         bool
	PeerReorder int
	StreamOrder bool
	// HighWater is the most a carrier's writer may hold (Path.Queued)
	// before Pick passes it over.
	HighWater int
	// MaxWire is the most wire bytes one frame takes (0: MaxHeaderLen +
	// DefaultMaxPayload).
	MaxWire int
	// AckDelay is the longest the peer holds an arrival before it
	// acknowledges it (Stripe.AckDelay).
	AckDelay time.Duration
}

// NewSender returns the Sender of a link just up.
func NewSender(cfg SenderConfig) *Sender {
	s := &Sender{Queue: NewQueue(), Grants: NewGrants(cfg.Limit, min(cfg.PerStream, cfg.Limit)),
		highWater: cfg.HighWater, maxWire: cfg.MaxWire}
	if s.maxWire <= 0 {
		s.maxWire = MaxHeaderLen + DefaultMaxPayload
	}
	s.Stripe.AckDelay = cfg.AckDelay
	if cfg.Seq {
		s.rs = NewResender(cfg.PeerReorder, cfg.StreamOrder)
	}
	return s
}

// Resender is the link's numbering and resend; nil without CapSeq.
func (s *Sender) Resender() *Resender { return s.rs }

// Push queues f. DATA counts against its stream's grant; DATA of a stream
// that is gone (it was reset) is dropped, and Push reports false. A RST
// drops what its stream had waiting, and the stream's grants.
func (s *Sender) Push(f *Frame) bool {
	switch f.Type {
	case TypeData:
		// The reader took no more than its grant, so this cannot fail
		// unless the stream is already forgotten (it was reset).
		if !s.Grants.Data(f.Stream, f.Len()) {
			f.Release()
			return false
		}
	case TypeRst:
		s.Drop(f.Stream)
	}
	s.Queue.Push(f)
	return true
}

// Drop releases what stream id has waiting (its DATA's room in Grants
// is free again) and forgets its grants.
func (s *Sender) Drop(id uint32) {
	if s.carry != nil && s.carry.Stream == id {
		s.carry.Release() // its grant was given back when its frame was taken
		s.carry = nil
	}
	for _, d := range s.Queue.Drop(id) {
		if d.Type == TypeData {
			s.Grants.Sent(d.Stream, d.Len())
		}
		d.Release()
	}
	s.Grants.Forget(id)
}

// Next returns the next frame to send and the path it goes on, or nil
// when nothing may go now: nothing waits; every path that would take it
// is full (the frame waits for it: Stripe.Pick); or, on a CapSeq link,
// what is unacknowledged is at the peer's reorder limit. What a lost or
// stalled path carried goes first; when the next frame must wait, a small
// one behind it may still go (Queue.PopSmall). The frame is counted on the
// path (Queued, and Sent when sequenced); the caller says when its writer
// took it by lowering Path.Queued.
func (s *Sender) Next(now time.Time) (*Frame, *Path) {
	striped := len(s.Stripe.Paths) > 1
	s.Stripe.Interactive = striped && s.interactive.Active(now)
	f, p := s.pick()
	if f == nil {
		return nil, nil
	}
	n := f.WireLen()
	if striped && s.own {
		s.interactive.Frame(f.Stream, n, now)
	}
	if f.Seq != 0 {
		f.Retain() // the writer's share; the Resender keeps its own
		p.OnSend(n, now)
	}
	p.Queued += n
	return f, p
}

func (s *Sender) pick() (*Frame, *Path) {
	s.own = false
	if s.rs != nil {
		if f, _ := s.rs.Peek(); f != nil {
			p := s.Stripe.Pick(f.WireLen(), s.highWater)
			if p == nil {
				return nil, nil
			}
			s.rs.SentAgain(p.ID)
			return f, p
		}
		if !s.rs.Room(s.maxWire) {
			return nil, nil
		}
	}
	// The rest of a frame split for a slow path goes before the rest of
	// its stream; control frames may still overtake it.
	f := s.Queue.Peek()
	carried := s.carry != nil && (f == nil || !f.Type.Control())
	if carried {
		f = s.carry
	}
	if f == nil {
		return nil, nil
	}
	p := s.Stripe.Pick(f.WireLen(), s.highWater)
	switch {
	case p != nil && carried:
		s.carry = nil
	case p != nil:
		f = s.Queue.Pop()
	case f.WireLen() > SmallFrame:
		var skip uint32 // the carried frame's stream: its rest goes first
		if s.carry != nil {
			skip = s.carry.Stream
		}
		if p = s.Stripe.Pick(SmallFrame, s.highWater); p != nil {
			f, carried = s.Queue.PopSmall(SmallFrame, skip), false
		}
	}
	if p == nil || f == nil {
		return nil, nil
	}
	if f.Type == TypeData && !carried {
		s.Grants.Sent(f.Stream, f.Len())
		s.own = true
	}
	if c := s.Stripe.Chunk(p); s.carry == nil && f.Type == TypeData && c > 0 && f.Len() > c {
		s.carry = splitFrame(f, c)
	}
	if s.rs != nil && f.Type.Sequenced() {
		s.rs.Number(f, p.ID)
	}
	return f, p
}

// splitFrame cuts DATA frame f after n bytes of payload and returns a new
// frame with the rest, which the caller owns.
func splitFrame(f *Frame, n int) *Frame {
	rest := &Frame{Type: f.Type, Flags: f.Flags, Stream: f.Stream, Payload: GetBuffer(f.Len() - n)}
	copy(rest.Payload.B, f.Payload.B[n:])
	f.Payload.B = f.Payload.B[:n]
	return rest
}

// AddCarrier starts a path for carrier id.
func (s *Sender) AddCarrier(id int, now time.Time) *Path { return s.Stripe.Add(id, now) }

// CarrierLost forgets carrier id's path; on a CapSeq link what it carried
// and the peer has not acknowledged goes again, first, on the others. It
// returns how many frames that puts in line.
func (s *Sender) CarrierLost(id int) int {
	s.Stripe.Remove(id)
	if s.rs == nil {
		return 0
	}
	return s.rs.Lost(id)
}

// Ack takes the peer's ACK, which came on carrier: what it acknowledges
// is released, and the carrier's path learns what arrived on it. An ACK
// of what was never sent is the peer's error.
func (s *Sender) Ack(carrier int, a Ack, now time.Time) error {
	if s.rs == nil {
		return nil
	}
	if err := s.rs.Ack(a.Received); err != nil {
		return err
	}
	if p := s.Stripe.Find(carrier); p != nil {
		if _, err := p.OnAck(a.CarrierBytes, now); err != nil {
			return err
		}
	}
	return nil
}

// Stalls marks the paths that delivered nothing for their stall time
// (Stripe.Stalls), appends them to dst, and puts what each holds in line
// to go again on the others; n is how many frames that puts in line.
func (s *Sender) Stalls(dst []*Path, now time.Time) (stalled []*Path, n int) {
	dst = s.Stripe.Stalls(dst, now)
	if s.rs != nil {
		for _, p := range dst {
			n += s.rs.Lost(p.ID)
		}
	}
	return dst, n
}

// Close releases every frame the Sender holds.
func (s *Sender) Close() {
	if s.carry != nil {
		s.carry.Release()
		s.carry = nil
	}
	for _, f := range s.Queue.DropAll() {
		f.Release()
	}
	if s.rs != nil {
		s.rs.Drop()
	}
}
