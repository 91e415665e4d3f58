package actors

import "github.com/asynkron/protoactor-go/actor"

// dropGuard frees what a message carried when the actor it was posted to
// stopped before taking it: protoactor drops user messages left in a
// stopped actor's mailbox without a word, which would leak their buffers
// and sockets. The guard sits in the mailbox as middleware; the actor's
// wrapper records each message its Receive is handed, and a message the
// mailbox popped but Receive never saw is released. Both run on the
// mailbox's goroutine, one message at a time, so no lock is needed.
//
// Every message sockmux sends is a pointer, so the comparison below never
// meets a type that cannot be compared.
type dropGuard struct{ delivered any }

func (g *dropGuard) MailboxStarted()   {}
func (g *dropGuard) MessagePosted(any) {}
func (g *dropGuard) MailboxEmpty()     {}

func (g *dropGuard) MessageReceived(msg any) {
	if env, ok := msg.(*actor.MessageEnvelope); ok {
		msg = env.Message
	}
	if msg != g.delivered {
		releaseMessage(msg)
	}
	g.delivered = nil
}

// guarded is an actor whose Receive reports each message to its guard.
type guarded struct {
	inner actor.Actor
	g     *dropGuard
}

func (a *guarded) Receive(ctx actor.Context) {
	a.g.delivered = ctx.Message()
	a.inner.Receive(ctx)
}

// props makes the props of every sockmux actor: supervised so that a
// failure stops the actor rather than restarting it with lost state, and
// guarded against silent drops.
func (e *env) props(p actor.Producer) *actor.Props {
	g := &dropGuard{}
	return actor.PropsFromProducer(func() actor.Actor { return &guarded{inner: p(), g: g} },
		actor.WithSupervisor(e.supervisor),
		actor.WithMailbox(actor.Unbounded(g)),
		actor.WithDispatcher(e.dispatcher))
}
