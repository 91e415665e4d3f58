package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

// carrierHighWater is how many bytes the Scheduler lets sit in a carrier's
// queue. Past it frames wait in the Scheduler, where control frames can
// still overtake data and streams take turns. A link whose frames are
// larger (the library's, 256 KiB) lets two of them sit there
// (highWaterFor): with one, the carrier would idle after each frame for
// the time its drained takes to come back and the next one to be handed
// over.
const carrierHighWater = 256 << 10

// maxWire is the most wire bytes one frame of a link whose largest DATA
// payload is sendMax takes (0, unknown: the Sender's default).
func maxWire(sendMax uint32) int {
	if sendMax == 0 {
		return 0
	}
	return engine.MaxHeaderLen + int(sendMax)
}

// highWaterFor is the high-water mark of the carriers of a link whose
// largest DATA payload is sendMax.
func highWaterFor(sendMax uint32) int {
	return max(carrierHighWater, 2*(int(sendMax)+engine.MaxHeaderLen))
}

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
// order in which frames go out. It carries out what its engine.Sender
// decides: the grants each Stream's reader gets (the peer's credit,
// within the link's limits), the queue's order, and, on a CapSeq link,
// numbering and keeping each frame until the peer acknowledges it, the
// carrier each frame goes on (the Stripe), and what a carrier that died or
// stalled did not deliver going again on the others. It hands the frames
// to the carriers' queues while they are below their high-water mark;
// with no carrier at all (a link waiting to be resumed) frames wait here.
type schedulerActor struct {
	env    *env
	peer   string // the link's peer, as its logs name it
	self   *actor.PID
	params engine.Params
	// out decides what goes next and on which carrier: the queue, each
	// stream's grants (what its reader may read: the peer's credit, within
	// the link's limits), numbering and resend, the striping (the same
	// engine.Sender the engine's Session sends through).
	out     *engine.Sender
	conns   map[uint32]*actor.PID // the Stream actor of each attached stream, which gets its grants
	granted []engine.Grant        // scratch for grants.Next
	failed  bool                  // told the Link the peer overloads it
	peak    int64                 // the most this link held for sending

	seq        bool // CapSeq: number, keep, resend
	outs       map[int]*carrierOut
	stalled    []*engine.Path
	stallArmed bool
	closed     bool
	// flushing: batches wait for the end of the mailbox run (runOver).
	flushing bool
	// highWater is what a carrier's queue may hold (highWaterFor).
	highWater int
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

func newScheduler(e *env, peer string, p engine.Params, maxUnacked int) *schedulerActor {
	limit := sendLimit(e.cfg.LinkBudget)
	s := &schedulerActor{env: e, peer: peer, params: p, conns: make(map[uint32]*actor.PID), outs: make(map[int]*carrierOut),
		highWater: highWaterFor(p.SendMax)}
	s.seq = p.Capabilities&engine.CapSeq != 0
	s.out = engine.NewSender(engine.SenderConfig{Limit: limit, PerStream: engine.DefaultGrantPerStream,
		Seq: s.seq, PeerReorder: maxUnacked, StreamOrder: streamOrder(p), HighWater: s.highWater,
		MaxWire:  maxWire(p.SendMax),
		AckDelay: engine.BulkAckDelay}) // the peer's (one protocol); Stripe.Interactive selects the shorter one
	return s
}

func (s *schedulerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *dataOut:
		traceHop(hopSchedIn)
		for _, f := range m.frames {
			s.enqueue(f)
		}
		s.pump()
	case *engine.Frame:
		switch m.Type {
		case engine.TypeOpen:
			traceHop(hopSchedOpen)
		case engine.TypeData:
			traceHop(hopSchedIn)
		}
		s.enqueue(m)
		s.pump()
	case *flushMore: // runOver does it
	case *inFrame: // the Link's, its frame taken: release what it held (heldUntilScheduled)
		m.backlog.takenN(m.held)
	case *inFrames:
		m.backlog.takenN(m.held)
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
		s.out.Grants.Open(m.id, s.params.SendWindow)
	case *streamAttached:
		s.conns[m.id] = m.conn
		s.out.Grants.Attach(m.id, s.params.SendWindow, m.used)
		if f := m.open; f != nil {
			traceHop(hopSchedOpen)
			s.enqueue(f)
		}
		if f := m.ok; f != nil {
			s.enqueue(f)
		}
		if m.open != nil || m.ok != nil {
			s.pump()
		}
	case *creditIn:
		if err := s.out.Grants.Credit(m.id, m.n); err != nil {
			s.env.warn("peer over-credited a stream", "peer", s.peer, "stream", m.id, "err", err)
		}
	case *creditBack:
		s.out.Grants.Returned(m.id, m.n)
	case *streamGone:
		s.out.Grants.Forget(m.id)
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
		s.out.Close()
		for _, o := range s.outs {
			o.dropPinned()
			o.dropBatch()
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
	s.granted = s.out.Grants.Next(s.granted[:0])
	for _, g := range s.granted {
		if pid := s.conns[g.Stream]; pid != nil {
			s.env.send(pid, &grant{n: g.N})
		}
	}
	held := s.out.Grants.Held() + int64(s.out.Queue.ReplyBytes())
	if held > s.peak {
		s.peak = held
		raiseMax(&s.env.stats.maxSendHeld, held)
	}
}

// checkBacklog closes the link, through the Link, once the control frames
// waiting for a carrier pass maxControlBacklog: the peer sends requests and
// does not read the replies.
func (s *schedulerActor) checkBacklog(ctx actor.Context) {
	if s.failed || s.out.Queue.ReplyBytes() <= maxControlBacklog {
		return
	}
	s.failed = true
	ctx.Send(ctx.Parent(), &schedFailed{overload: true,
		err: fmt.Errorf("%w: %d bytes of replies waiting", errPeerNotReading, s.out.Queue.ReplyBytes())})
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
	if o.path.Queued < s.highWater {
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
		if f == nil || o.path.Queued >= s.highWater {
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
			traceHop(hopCarrierQueued)
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
	o := &carrierOut{path: s.out.AddCarrier(m.id, time.Now()), q: m.q}
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
	s.env.stats.resent.Add(int64(s.out.CarrierLost(id)))
	s.pump()
}

func (s *schedulerActor) ack(ctx actor.Context, m *ackIn) {
	if !s.seq {
		return
	}
	if err := s.out.Ack(m.carrier, m.ack, time.Now()); err != nil {
		ctx.Send(ctx.Parent(), &schedFailed{err: err})
		return
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
	var resent int
	s.stalled, resent = s.out.Stalls(s.stalled[:0], time.Now())
	s.env.stats.resent.Add(int64(resent))
	for _, p := range s.stalled {
		s.env.log.Warn("carrier stalled; sending what it holds on the others", "carrier", p.ID,
			"in_flight", p.InFlight(), "rtt", p.RTT)
		s.env.stats.carrierStalls.Add(1)
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
	n := f.Len()
	if s.out.Push(f) && f.Type == engine.TypeData {
		s.env.stats.BytesOut.Add(int64(n))
	}
}

// pump hands frames to the carriers while the Sender has one to go: it
// decides which frame and on which carrier (what must go again first,
// the queue's next, small frames past a full path, the peer's reorder
// limit: engine.Sender.Next).
func (s *schedulerActor) pump() {
	if len(s.outs) == 0 {
		return
	}
	var now time.Time
	if s.seq {
		now = time.Now()
	}
	for {
		f, p := s.out.Next(now)
		if f == nil {
			return
		}
		s.batch(s.outs[p.ID], f)
	}
}
