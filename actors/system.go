package actors

// The actor system nodes run on: protoactor's ActorSystem and the workers
// that run its mailboxes. A node starts one of its own unless it is given
// one to share (Config.System); the library's Sessions share one for the
// process (SharedSystem), so a Session costs its link and its streams,
// not a system of megabytes and its four worker goroutines.
//
// Nodes that share a system share nothing else: each has its own env (its
// link table, stream ids, policies, statistics, logger and supervisor),
// and an actor of one never learns the PID of another's. The system's own
// registry gives every PID a unique id, so the tables a node keys by PID
// do not collide.

import (
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// System is an actor system and its mailbox workers, which one node or
// several run on.
type System struct {
	sys     *actor.ActorSystem
	workers *workerDispatcher
}

// newSystem starts an actor system whose mailboxes workers run;
// protoactor's own logs go to log, one level down (libHandler). A node's
// own is stopped with close once the node has closed.
func newSystem(log *slog.Logger, workers *workerDispatcher) *System {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lib := slog.New(libHandler{log.Handler()}).With("lib", "protoactor")
	s := &System{
		sys: actor.NewActorSystem(
			actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return lib }),
			actor.WithDeadLetterThrottleInterval(10*time.Millisecond)),
		workers: workers,
	}
	s.sys.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*actor.DeadLetterEvent); ok {
			releaseMessage(dl.Message) // a message to a stopped actor: its buffers back to the pool
		}
	})
	return s
}

// close stops the workers and the actor system (a node's own, never the
// shared one).
func (s *System) close() {
	s.workers.stop()
	s.sys.Shutdown()
}

var shared struct {
	once sync.Once
	sys  *System
}

// SharedSystem is the process's shared actor system, started on first use
// and never stopped: its workers idle in a receive when no node runs.
// protoactor's own logs on it are dropped (no one node's logger is the
// right one for them); sockmux's logs still go to each node's Logger.
func SharedSystem() *System {
	shared.once.Do(func() { shared.sys = newSystem(nil, startWorkers(300, sharedWorker)) })
	return shared.sys
}
