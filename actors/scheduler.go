package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

// carrierHighWater is how many bytes the Scheduler lets sit in a carrier's
// queue. Past it frames wait in the Scheduler, where control frames can
// still overtake data and streams take turns.
const carrierHighWater = 256 << 10

// maxControlBacklog is how many bytes of control frames (OPEN_FAIL, RST,
// CREDIT, BIND_REPLY: replies, mostly) may wait for a carrier. A peer that
// floods requests and never reads their replies reaches it; the link is
// then closed with a GOAWAY saying so, rather than the replies kept.
const maxControlBacklog = 1 << 20

// reclaimAfter is how much a link must have held for sending for its end
// to hand freed memory back to the OS at once (env.reclaim).
const reclaimAfter = 8 << 20

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
	grants  *engine.Grants        // what each stream's reader may read: the peer's credit, within the link's limits
	conns   map[uint32]*actor.PID // the Stream actor of each attached stream, which gets its grants
	granted []engine.Grant        // scratch for grants.Next
	failed  bool                  // told the Link the peer overloads it
	peak    int64                 // the most this link held for sending

	seq     bool             // CapSeq: number, keep, resend
	rs      *engine.Resender // seq only: numbering, what the peer has not acknowledged, what goes again
	stripe  engine.Stripe
	outs    map[int]*carrierOut
	stalled []*engine.Path
	// carry is the rest of a DATA frame cut for a slow path
	// (engine.Stripe.Chunk), not numbered yet: it goes next.
	carry      *engine.Frame
	stallArmed bool
	closed     bool
	// flushing: batches wait for the end of the mailbox run (runOver).
	flushing bool
}

// carrierOut is one carrier's outgoing queue and the batch being built
// for it.
type carrierOut struct {
	path  *engine.Path
	q     *frameQueue
	batch []*engine.Frame
	// pinned are the carrier's own frames (PONG, ACK, PING) waiting while
	// its queue is above the high-water mark: one of each type, the
	// latest, for each replaces the one before (an ACK is cumulative, a
	// PONG answers the newest PING). A peer that floods PINGs and never
	// reads costs one PONG.
	pinned [3]*engine.Frame
}

// pinnedSlot is where a carrier keeps a waiting frame of type t.
func pinnedSlot(t engine.Type) int {
	switch t {
	case engine.TypePong:
		return 0
	case engine.TypeAck:
		return 1
	}
	return 2
}

// sendLimit is what one link may hold for sending (granted to its readers
// or queued): a quarter of its memory budget, whatever the peer's windows.
func sendLimit(linkBudget int64) int64 { return max(linkBudget/4, engine.MaxGrant) }

func newScheduler(e *env, p engine.Params, maxUnacked int) *schedulerActor {
	limit := sendLimit(e.cfg.LinkBudget)
	s := &schedulerActor{env: e, params: p, queue: engine.NewQueue(), conns: make(map[uint32]*actor.PID),
		grants: engine.NewGrants(limit, min(engine.DefaultGrantPerStream, limit)),
		outs:   make(map[int]*carrierOut)}
	s.stripe.AckDelay = ackDelay // the peer's, as this side's: one protocol
	if p.Capabilities&engine.CapSeq != 0 {
		s.seq, s.rs = true, engine.NewResender(maxUnacked, streamOrder(p))
	}
	return s
}

func (s *schedulerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *dataOut:
		traceHop(HopSchedIn)
		for _, f := range m.frames {
			s.enqueue(f)
		}
		s.pump()
	case *engine.Frame:
		switch m.Type {
		case engine.TypeOpen:
			traceHop(HopSchedOpen)
		case engine.TypeData:
			traceHop(HopSchedIn)
		}
		s.enqueue(m)
		s.pump()
	case *flushMore: // runOver does it
	case *drained:
		if o := s.outs[m.carrier]; o != nil {
			o.path.Queued -= m.bytes
			s.pushPinned(o)
		}
		s.pump()
	case *pinned:
		s.pin(m)
	case *ackIn:
		s.ack(ctx, m)
	case *pathRTT:
		if o := s.outs[m.carrier]; o != nil && (o.path.RTT == 0 || m.rtt < o.path.RTT) {
			o.path.RTT = m.rtt
		}
	case *stallTick:
		s.stallArmed = false
		s.checkStalls()
	case *streamDeclared:
		s.grants.Open(m.id, s.params.SendWindow)
	case *streamAttached:
		s.conns[m.id] = m.conn
		s.grants.Attach(m.id, s.params.SendWindow, m.used)
	case *creditIn:
		if err := s.grants.Credit(m.id, m.n); err != nil {
			s.env.warn("peer over-credited a stream", "stream", m.id, "err", err)
		}
	case *creditBack:
		s.grants.Returned(m.id, m.n)
	case *streamGone:
		s.grants.Forget(m.id)
		delete(s.conns, m.id)
	case *carrierAttached:
		s.attachCarrier(m)
	case *carrierGone:
		s.carrierGone(m.id)
	case *carrierStatusReq:
		for i, id := range m.ids {
			if o := s.outs[id]; o != nil {
				c := &m.ls.PerCarrier[i]
				c.RTT, c.BytesSent, c.InFlight, c.Stalled = o.path.RTT, o.path.Sent, o.path.InFlight(), o.path.Stalled
			}
		}
		ctx.Respond(m.ls)
		return // nothing changed: no grants, no backlog check
	case *actor.Started:
		s.self = ctx.Self()
	case *actor.Stopping:
		s.closed = true
		if s.carry != nil {
			s.carry.Release()
			s.carry = nil
		}
		for _, f := range s.queue.DropAll() {
			f.Release()
		}
		for _, o := range s.outs {
			o.dropPinned()
			o.dropBatch()
		}
		if s.rs != nil {
			s.rs.Drop()
		}
		if s.peak >= reclaimAfter {
			s.env.reclaim()
		}
		return
	}
	s.grant()
	s.checkBacklog(ctx)
}

// grant hands the streams' readers what Grants allows now.
func (s *schedulerActor) grant() {
	s.granted = s.grants.Next(s.granted[:0])
	for _, g := range s.granted {
		if pid := s.conns[g.Stream]; pid != nil {
			s.env.send(pid, &grant{n: g.N})
		}
	}
	held := s.grants.Held() + int64(s.queue.ReplyBytes())
	if held > s.peak {
		s.peak = held
		raiseMax(&s.env.stats.MaxSendHeld, held)
	}
}

// checkBacklog closes the link, through the Link, once the control frames
// waiting for a carrier pass maxControlBacklog: the peer sends requests and
// does not read the replies.
func (s *schedulerActor) checkBacklog(ctx actor.Context) {
	if s.failed || s.queue.ReplyBytes() <= maxControlBacklog {
		return
	}
	s.failed = true
	ctx.Send(ctx.Parent(), &schedFailed{overload: true,
		err: fmt.Errorf("%w: %d bytes of replies waiting", ErrPeerNotReading, s.queue.ReplyBytes())})
}

// pin sends a carrier's own frame on that carrier, ahead of what waits in
// the Scheduler; while the carrier's queue is above its high-water mark
// only the latest of each type waits.
func (s *schedulerActor) pin(m *pinned) {
	o := s.outs[m.carrier]
	if o == nil {
		m.f.Release()
		return
	}
	if o.path.Queued < carrierHighWater {
		o.path.Queued += m.f.WireLen()
		s.batch(o, m.f)
		return
	}
	i := pinnedSlot(m.f.Type)
	if old := o.pinned[i]; old != nil {
		old.Release()
	}
	o.pinned[i] = m.f
}

// pushPinned sends what pin kept waiting once the carrier has room.
func (s *schedulerActor) pushPinned(o *carrierOut) {
	for i, f := range o.pinned {
		if f == nil || o.path.Queued >= carrierHighWater {
			continue
		}
		o.pinned[i] = nil
		o.path.Queued += f.WireLen()
		s.batch(o, f)
	}
}

// batch adds f to what goes to o's carrier at the next flush.
func (s *schedulerActor) batch(o *carrierOut, f *engine.Frame) {
	o.batch = append(o.batch, f)
	s.flushing = true
}

// runOver hands the carriers what the mailbox run batched for them: the
// frames of every message that came in one run leave with one write.
// What a carrier wrote at once makes room that is pumped into the next
// batch, flushed in turn.
func (s *schedulerActor) runOver(actor.Context) {
	for i := 0; s.flushing && !s.closed && i < 8; i++ {
		s.flushing = false
		s.flush()
	}
	if s.flushing && !s.closed {
		s.env.send(s.self, flushMoreMsg) // the rest in the next run, after what waits
	}
}

// flushMore gives the Scheduler another mailbox run to hand its carriers
// what one run could not.
type flushMore struct{}

var flushMoreMsg = &flushMore{}

// flush hands each carrier its batch. What a carrier's queue writes at
// once is drained already: room for more, pumped into the next batch.
func (s *schedulerActor) flush() {
	wrote := false
	for _, o := range s.outs {
		if len(o.batch) == 0 {
			continue
		}
		if HopTracing && hasData(o.batch) {
			traceHop(HopCarrierQueued)
		}
		if n := o.q.push(o.batch); n > 0 {
			o.path.Queued -= n
			wrote = true
		}
		clear(o.batch)
		o.batch = o.batch[:0]
	}
	if wrote {
		for _, o := range s.outs {
			s.pushPinned(o)
		}
		s.pump()
	}
}

// dropBatch releases what waited for the next flush.
func (o *carrierOut) dropBatch() {
	for _, f := range o.batch {
		f.Release()
	}
	clear(o.batch)
	o.batch = o.batch[:0]
}

// dropPinned releases what pin kept waiting.
func (o *carrierOut) dropPinned() {
	for i, f := range o.pinned {
		if f != nil {
			f.Release()
			o.pinned[i] = nil
		}
	}
}

func (s *schedulerActor) attachCarrier(m *carrierAttached) {
	o := &carrierOut{path: s.stripe.Add(m.id, time.Now()), q: m.q}
	s.outs[m.id] = o
	if m.first != nil {
		o.path.Queued += m.first.WireLen()
		s.batch(o, m.first)
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
	s.outs[id].dropPinned()
	s.outs[id].dropBatch() // the writer's share; Unacked still has what must be sent again
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
	if n := s.rs.Lost(id); n > 0 {
		s.env.stats.Resent.Add(int64(n))
	}
}

func (s *schedulerActor) ack(ctx actor.Context, m *ackIn) {
	if !s.seq {
		return
	}
	if err := s.rs.Ack(m.ack.Received); err != nil {
		ctx.Send(ctx.Parent(), &schedFailed{err: err})
		return
	}
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
	if s.failed { // the link is closing on a peer that does not read: nothing more is queued for it
		f.Release()
		return
	}
	switch f.Type {
	case engine.TypeData:
		// The reader read no more than its grant, so this cannot fail
		// unless the stream is already forgotten (it was reset).
		if !s.grants.Data(f.Stream, f.Len()) {
			f.Release()
			return
		}
		s.env.stats.BytesOut.Add(int64(f.Len()))
	case engine.TypeRst:
		if s.carry != nil && s.carry.Stream == f.Stream {
			s.carry.Release() // its grant was given back when its frame was taken
			s.carry = nil
		}
		for _, d := range s.queue.Drop(f.Stream) {
			if d.Type == engine.TypeData {
				s.grants.Sent(d.Stream, d.Len())
			}
			d.Release()
		}
		s.grants.Forget(f.Stream)
	}
	s.queue.Push(f)
}

// maxFrameWire is the most wire bytes one frame takes.
const maxFrameWire = engine.MaxHeaderLen + engine.DefaultMaxPayload

// pump hands frames to the carriers: first what must be sent again, then
// the queue's next, each to the carrier Stripe picks, while one has room
// (and, on a CapSeq link, while the unacknowledged bytes stay below the
// peer's reorder limit). When the next frame must wait (every carrier
// holds its cap), a small one behind it may still go (Queue.PopSmall).
func (s *schedulerActor) pump() {
	if len(s.outs) == 0 {
		return
	}
	var now time.Time
	if s.seq {
		now = time.Now()
	}
	for {
		var (
			f *engine.Frame
			p *engine.Path
		)
		if s.seq {
			f, _ = s.rs.Peek()
		}
		if f != nil {
			if p = s.stripe.Pick(f.WireLen(), carrierHighWater); p == nil {
				break
			}
			s.rs.SentAgain(p.ID)
		} else {
			if s.seq && !s.rs.Room(maxFrameWire) {
				break
			}
			// The rest of a frame split for a slow path goes before the
			// rest of its stream; control frames may still overtake it.
			f = s.queue.Peek()
			carried := s.carry != nil && (f == nil || !f.Type.Control())
			if carried {
				f = s.carry
			}
			if f == nil {
				break
			}
			if p = s.stripe.Pick(f.WireLen(), carrierHighWater); p != nil {
				if carried {
					s.carry = nil
				} else {
					f = s.queue.Pop()
				}
			} else if f.WireLen() > engine.SmallFrame {
				var skip uint32 // the carried frame's stream: its rest goes first
				if s.carry != nil {
					skip = s.carry.Stream
				}
				if p = s.stripe.Pick(engine.SmallFrame, carrierHighWater); p != nil {
					f, carried = s.queue.PopSmall(engine.SmallFrame, skip), false
				}
			}
			if p == nil || f == nil {
				break
			}
			if f.Type == engine.TypeData && !carried {
				s.grants.Sent(f.Stream, f.Len())
			}
			if c := s.stripe.Chunk(p); s.carry == nil && f.Type == engine.TypeData && c > 0 && f.Len() > c {
				s.carry = splitFrame(f, c)
			}
			if s.seq && f.Type.Sequenced() {
				s.rs.Number(f, p.ID)
			}
		}
		n := f.WireLen()
		if f.Seq != 0 {
			f.Retain() // the writer's share; Unacked keeps its own
			p.OnSend(n, now)
		}
		p.Queued += n
		s.batch(s.outs[p.ID], f)
	}
}

// splitFrame cuts DATA frame f after n bytes of payload and returns a new
// frame with the rest, which the caller owns.
func splitFrame(f *engine.Frame, n int) *engine.Frame {
	rest := &engine.Frame{Type: f.Type, Flags: f.Flags, Stream: f.Stream, Payload: engine.GetBuffer(f.Len() - n)}
	copy(rest.Payload.B, f.Payload.B[n:])
	f.Payload.B = f.Payload.B[:n]
	return rest
}
