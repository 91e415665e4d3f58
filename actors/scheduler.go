package actors

import (
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sockmux/engine"
)

// carrierHighWater is how many bytes the Scheduler lets sit in a carrier's
// queue. Past it frames wait in the Scheduler, where control frames can
// still overtake data and streams take turns.
const carrierHighWater = 256 << 10

// stallCheckEvery is how often a striped link looks for a carrier that
// stopped delivering.
const stallCheckEvery = 50 * time.Millisecond

// schedulerActor is the sole owner of a link's send credit and of the
// order in which frames go out. It grants each Stream the
// credit the peer gave (the reader reads no more than that), queues frames
// by engine.Queue's policy, and feeds the carriers while they are below
// their high-water mark.
//
// On a CapSeq link it also numbers every sequenced frame and keeps it
// until the peer acknowledges it (engine.Unacked), chooses for each frame
// the carrier that will deliver it first (engine.Stripe), and sends again,
// on the others, what a carrier that died or stalled did not deliver. With
// no carrier at all (a link waiting to be resumed) frames wait here.
type schedulerActor struct {
	env     *env
	self    *actor.PID
	params  engine.Params
	queue   *engine.Queue
	streams map[uint32]*sendState

	seq        bool            // CapSeq: number, keep, resend
	unacked    *engine.Unacked // seq only
	maxUnacked int             // the peer's reorder limit
	resend     []uint64        // sequence numbers to send again, in order
	stripe     engine.Stripe
	outs       map[int]*carrierOut
	stalled    []*engine.Path
	stallArmed bool
	closed     bool
}

// carrierOut is one carrier's outgoing queue and the batch being built
// for it.
type carrierOut struct {
	path  *engine.Path
	q     *frameQueue
	batch []*engine.Frame
}

type sendState struct {
	win  engine.SendWindow
	conn *actor.PID
}

func newScheduler(e *env, p engine.Params, maxUnacked int) *schedulerActor {
	s := &schedulerActor{env: e, params: p, queue: engine.NewQueue(), streams: make(map[uint32]*sendState),
		outs: make(map[int]*carrierOut)}
	if p.Capabilities&engine.CapSeq != 0 {
		s.seq, s.unacked, s.maxUnacked = true, engine.NewUnacked(), maxUnacked
	}
	return s
}

func (s *schedulerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *dataOut:
		for _, f := range m.frames {
			s.enqueue(f)
		}
		s.pump()
	case *engine.Frame:
		s.enqueue(m)
		s.pump()
	case *drained:
		if o := s.outs[m.carrier]; o != nil {
			o.path.Queued -= m.bytes
		}
		s.pump()
	case *pinned:
		o := s.outs[m.carrier]
		if o == nil {
			m.f.Release()
			return
		}
		o.path.Queued += m.f.WireLen()
		o.q.push([]*engine.Frame{m.f})
	case *ackIn:
		s.ack(ctx, m)
	case *pathRTT:
		if o := s.outs[m.carrier]; o != nil && (o.path.RTT == 0 || m.rtt < o.path.RTT) {
			o.path.RTT = m.rtt
		}
	case *stallTick:
		s.stallArmed = false
		s.checkStalls()
	case *attach:
		st := &sendState{win: engine.NewSendWindow(s.params.SendWindow), conn: m.conn}
		st.win.Take(m.used)
		s.streams[m.id] = st
		if n := st.win.Avail(); n > 0 {
			s.env.send(m.conn, &grant{n: n})
		}
	case *creditIn:
		st := s.streams[m.id]
		if st == nil {
			return // the stream ended while the CREDIT was on the wire
		}
		if err := st.win.Add(m.n); err != nil {
			s.env.log.Warn("peer over-credited a stream", "stream", m.id, "err", err)
			return
		}
		s.env.send(st.conn, &grant{n: int64(m.n)})
	case *forget:
		delete(s.streams, m.id)
	case *carrierAttached:
		s.attachCarrier(m)
	case *carrierGone:
		s.carrierGone(m.id)
	case *actor.Started:
		s.self = ctx.Self()
	case *actor.Stopping:
		s.closed = true
		for _, f := range s.queue.DropAll() {
			f.Release()
		}
		if s.unacked != nil {
			s.unacked.Drop()
		}
	}
}

func (s *schedulerActor) attachCarrier(m *carrierAttached) {
	o := &carrierOut{path: s.stripe.Add(m.id, time.Now()), q: m.q}
	s.outs[m.id] = o
	if m.first != nil {
		o.path.Queued += m.first.WireLen()
		o.q.push([]*engine.Frame{m.first})
	}
	s.armStallCheck()
	s.pump()
}

// carrierGone forgets a carrier; on a CapSeq link, what it carried that
// the peer has not acknowledged is sent again on the others. Its queue
// was closed, which released the writer's share of each frame.
func (s *schedulerActor) carrierGone(id int) {
	if s.outs[id] == nil {
		return
	}
	delete(s.outs, id)
	s.stripe.Remove(id)
	if s.seq {
		s.requeue(id)
	}
	s.pump()
}

// requeue puts what carrier id carried and the peer has not acknowledged
// first in line, in sequence order.
func (s *schedulerActor) requeue(id int) {
	n := len(s.resend)
	s.resend = s.unacked.On(s.resend, id)
	if len(s.resend) > n {
		s.env.stats.Resent.Add(int64(len(s.resend) - n))
		slices.Sort(s.resend)
		s.resend = slices.Compact(s.resend)
	}
}

func (s *schedulerActor) ack(ctx actor.Context, m *ackIn) {
	if !s.seq {
		return
	}
	if err := s.unacked.Ack(m.ack.Received); err != nil {
		ctx.Send(ctx.Parent(), &schedFailed{err: err})
		return
	}
	// What was resent and is now acknowledged needs no more sending.
	i := 0
	for i < len(s.resend) && s.resend[i] <= m.ack.Received {
		i++
	}
	s.resend = s.resend[i:]
	if o := s.outs[m.carrier]; o != nil {
		if _, err := o.path.OnAck(m.ack.CarrierBytes, time.Now()); err != nil {
			ctx.Send(ctx.Parent(), &schedFailed{err: err})
			return
		}
	}
	s.pump()
}

// armStallCheck keeps a timer running while there are two carriers or
// more to choose between.
func (s *schedulerActor) armStallCheck() {
	if !s.seq || s.stallArmed || len(s.outs) < 2 || s.closed {
		return
	}
	s.stallArmed = true
	self, env := s.self, s.env
	time.AfterFunc(stallCheckEvery, func() { env.send(self, &stallTick{}) })
}

// checkStalls takes a carrier that has delivered nothing for a while out
// of the choice and sends what it holds again on the others: it may have
// stopped reading, and waiting for it would stall every stream behind the
// frames it holds.
func (s *schedulerActor) checkStalls() {
	s.stalled = s.stripe.Stalls(s.stalled[:0], time.Now())
	for _, p := range s.stalled {
		s.env.log.Warn("carrier stalled; sending what it holds on the others", "carrier", p.ID,
			"in_flight", p.InFlight(), "rtt", p.RTT)
		s.env.stats.CarrierStalls.Add(1)
		s.requeue(p.ID)
	}
	clear(s.stalled)
	if len(s.stalled) > 0 {
		s.pump()
	}
	s.armStallCheck()
}

func (s *schedulerActor) enqueue(f *engine.Frame) {
	switch f.Type {
	case engine.TypeData:
		// The reader read no more than its grant, so this cannot fail
		// unless the stream is already forgotten (it was reset).
		st := s.streams[f.Stream]
		if st == nil || !st.win.Take(f.Len()) {
			f.Release()
			return
		}
		s.env.stats.BytesOut.Add(int64(f.Len()))
	case engine.TypeRst:
		for _, d := range s.queue.Drop(f.Stream) {
			d.Release()
		}
		delete(s.streams, f.Stream)
	}
	s.queue.Push(f)
}

// maxFrameWire is the most wire bytes one frame takes.
const maxFrameWire = engine.MaxHeaderLen + engine.DefaultMaxPayload

// pump hands frames to the carriers: first what must be sent again, then
// the queue's next, each to the carrier Stripe picks, while one has room
// (and, on a CapSeq link, while the unacknowledged bytes stay below the
// peer's reorder limit).
func (s *schedulerActor) pump() {
	if len(s.outs) == 0 {
		return
	}
	var now time.Time
	if s.seq {
		now = time.Now()
	}
	for {
		p := s.stripe.Pick(0, carrierHighWater)
		if p == nil {
			break
		}
		var f *engine.Frame
		if len(s.resend) > 0 {
			seq := s.resend[0]
			s.resend = s.resend[1:]
			if f, _ = s.unacked.Get(seq); f == nil {
				continue // acknowledged since
			}
			s.unacked.SentOn(seq, p.ID)
		} else {
			if s.seq && s.unacked.Bytes()+maxFrameWire > s.maxUnacked {
				break
			}
			if f = s.queue.Pop(); f == nil {
				break
			}
			if s.seq && f.Type.Sequenced() {
				s.unacked.Number(f, p.ID)
			}
		}
		n := f.WireLen()
		if f.Seq != 0 {
			f.Retain() // the writer's share; Unacked keeps its own
			p.OnSend(n, now)
		}
		p.Queued += n
		o := s.outs[p.ID]
		o.batch = append(o.batch, f)
	}
	for _, o := range s.outs {
		if len(o.batch) > 0 {
			o.q.push(o.batch)
			clear(o.batch)
			o.batch = o.batch[:0]
		}
	}
}
