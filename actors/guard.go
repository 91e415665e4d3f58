package actors

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// box is a sockmux actor's mailbox and the wrapper around the actor, in
// one allocation (an idle stream is mostly its actor's bookkeeping, so
// this is lean on purpose: protoactor's default mailbox, with its ring of
// ten, its lock-free system queue and a middleware to guard it, took about
// three times the memory).
//
// It runs as protoactor's default mailbox does: system messages first,
// suspension, a throughput after which it yields, a panic escalated to the
// supervisor. And it guards against silent drops: protoactor drops user
// messages left in a stopped actor's mailbox without a word, which would
// leak their buffers and sockets. Receive records each message it is
// handed; a message the mailbox popped but Receive never saw is released
// (releaseMessage). Both run on the mailbox's goroutine, one message at a
// time, so delivered needs no lock. Every message sockmux sends is a
// pointer, so the comparison never meets a type that cannot be compared.
type box struct {
	inner     actor.Actor
	delivered any // what Receive was last handed

	mu   sync.Mutex
	user ring[any] // user messages, under mu
	sys  []any     // system messages, under mu (few: start, stop, watch); its array is kept

	userN, sysN atomic.Int32 // queued, read without mu
	running     atomic.Bool  // scheduled on the dispatcher
	suspended   atomic.Bool

	invoker    actor.MessageInvoker
	dispatcher actor.Dispatcher
	onStrand   bool   // dispatcher is a link's strand
	process    func() // b.processMessages, bound once
}

// Receive records the message for the guard and passes it on.
func (b *box) Receive(ctx actor.Context) {
	b.delivered = ctx.Message()
	b.inner.Receive(ctx)
}

// PostUserMessage queues a user message and schedules the mailbox.
func (b *box) PostUserMessage(msg any) {
	b.mu.Lock()
	b.user.push(msg)
	b.mu.Unlock()
	b.userN.Add(1)
	b.schedule()
}

// PostSystemMessage queues a system message and schedules the mailbox.
func (b *box) PostSystemMessage(msg any) {
	b.mu.Lock()
	b.sys = append(b.sys, msg)
	b.mu.Unlock()
	b.sysN.Add(1)
	b.schedule()
}

// RegisterHandlers takes the actor's context and the dispatcher.
func (b *box) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	b.invoker, b.dispatcher = invoker, dispatcher
	if st, ok := dispatcher.(*strand); ok {
		b.onStrand = true
		if a, ok := b.inner.(interface{ runsOn(*strand) }); ok {
			a.runsOn(st) // an actor whose goroutines run its strand
		}
	}
	b.process = b.processMessages
}

// Start is called once the mailbox is set up; nothing to do.
func (b *box) Start() {}

// UserMessageCount is how many user messages wait.
func (b *box) UserMessageCount() int { return int(b.userN.Load()) }

func (b *box) schedule() {
	if b.running.CompareAndSwap(false, true) {
		b.dispatcher.Schedule(b.process)
	}
}

// processMessages runs what is queued, and runs again if something came
// after the run ended but before the mailbox was marked idle.
func (b *box) processMessages() {
	for {
		if b.run() {
			// A strand's mailbox yields by going to the back of the
			// strand's line, still marked running: the link's other
			// actors get their turn.
			b.dispatcher.Schedule(b.process)
			return
		}
		b.running.Store(false)
		if b.sysN.Load() == 0 && (b.suspended.Load() || b.userN.Load() == 0) {
			return
		}
		if !b.running.CompareAndSwap(false, true) {
			return // a poster scheduled it again
		}
	}
}

// run runs what is queued; on a strand it stops after the dispatcher's
// throughput and reports true (yield), elsewhere it yields the processor
// then and goes on.
func (b *box) run() (yield bool) {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			yield = false
			b.invoker.EscalateFailure(r, msg)
		}
	}()
	i, t := 0, b.dispatcher.Throughput()
	for {
		if i > t {
			if b.onStrand && (b.sysN.Load() > 0 || !b.suspended.Load() && b.userN.Load() > 0) {
				b.runOver()
				return true
			}
			i = 0
			runtime.Gosched()
		}
		i++
		b.mu.Lock()
		if len(b.sys) > 0 {
			// Shifted down, not resliced: the array is kept for the
			// next (an actor's few, a Link's Terminated per stream)
			// instead of allocated again.
			msg = b.sys[0]
			n := copy(b.sys, b.sys[1:])
			b.sys[n] = nil
			b.sys = b.sys[:n]
			b.mu.Unlock()
			b.sysN.Add(-1)
			switch msg.(type) {
			case *actor.SuspendMailbox:
				b.suspended.Store(true)
			case *actor.ResumeMailbox:
				b.suspended.Store(false)
			default:
				b.invoker.InvokeSystemMessage(msg)
			}
			continue
		}
		if b.suspended.Load() {
			b.mu.Unlock()
			return false
		}
		msg, _ = b.user.pop()
		b.mu.Unlock()
		if msg == nil {
			b.runOver()
			return false
		}
		b.userN.Add(-1)
		b.delivered = nil
		b.invoker.InvokeUserMessage(msg)
		if m := actor.UnwrapEnvelopeMessage(msg); m != b.delivered {
			releaseMessage(m) // the actor had stopped: protoactor dropped it
		}
		b.delivered = nil
	}
}

// runEnder is an actor that collects what its messages produce for I/O
// (a Stream what it writes to its socket, the Scheduler what it hands its
// carriers) and does it once a mailbox run is over: what came in one run
// leaves with one system call, at no message's cost.
type runEnder interface {
	runOver(ctx actor.Context)
}

// runOver tells the actor, if it wants to know, that a mailbox run is
// over (the mailbox is empty, or it yields its turn).
func (b *box) runOver() {
	if a, ok := b.inner.(runEnder); ok {
		if ctx, ok := b.invoker.(actor.Context); ok {
			a.runOver(ctx)
		}
	}
}

// ring is a queue in a ring that grows as needed and is let go of when a
// burst that made it large is over: a mailbox's messages, a strand's
// mailboxes.
type ring[T any] struct {
	buf     []T
	head, n int32
}

// ringKeep is the largest ring kept once empty.
const ringKeep = 16

func (r *ring[T]) push(m T) {
	if int(r.n) == len(r.buf) {
		grown := make([]T, max(4, 2*len(r.buf)))
		for i := range r.n {
			grown[i] = r.buf[(r.head+i)%int32(len(r.buf))]
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%int32(len(r.buf))] = m
	r.n++
}

// pop takes the oldest; ok is false when the ring is empty.
func (r *ring[T]) pop() (m T, ok bool) {
	if r.n == 0 {
		return m, false
	}
	var zero T
	m = r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % int32(len(r.buf))
	r.n--
	if r.n == 0 && len(r.buf) > ringKeep {
		r.buf, r.head = nil, 0
	}
	return m, true
}

// props makes the props of every sockmux actor: supervised so that a
// failure stops the actor rather than restarting it with lost state, run
// on the node's workers, in a box (its mailbox and drop guard).
func (e *env) props(p actor.Producer) *actor.Props { return e.propsOn(e.dispatcher, p) }

// propsHanded is propsOn for actors that one goroutine at a time spawns
// with the same Props, one after another (a Link's Streams, on its
// strand): before each Spawn the caller puts the actor in *next. One Props
// serves them all, where propsOn makes a Props, its options and their
// closures for each actor. protoactor's spawn produces the actor, then its
// mailbox, both within Spawn, so b passes from one to the other; the
// supervisor never restarts an actor (it stops it), so the producer runs
// once per Spawn.
func (e *env) propsHanded(d actor.Dispatcher, next *actor.Actor) *actor.Props {
	var b *box
	return actor.PropsFromProducer(func() actor.Actor { b = &box{inner: *next}; *next = nil; return b },
		actor.WithSupervisor(e.supervisor),
		actor.WithMailbox(func() actor.Mailbox { m := b; b = nil; return m }),
		actor.WithDispatcher(d))
}

// propsOn is props with the actor run by d: a link's actors run on the
// link's strand.
func (e *env) propsOn(d actor.Dispatcher, p actor.Producer) *actor.Props {
	b := &box{}
	return actor.PropsFromProducer(func() actor.Actor { b.inner = p(); return b },
		actor.WithSupervisor(e.supervisor),
		actor.WithMailbox(func() actor.Mailbox { return b }),
		actor.WithDispatcher(d))
}
