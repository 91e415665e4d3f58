package actors

import (
	"runtime"
	"sync"
)

// workerDispatcher runs mailboxes on a few long-lived goroutines.
// protoactor's default dispatcher starts a goroutine each time a mailbox is
// scheduled, and that fresh goroutine grows its stack through the actor's
// call chain on every message: a quarter of the CPU of a request/response
// workload went to stack growth. A mailbox is handed to an idle worker
// over an unbuffered channel, so nothing ever queues behind a busy one;
// when every worker is busy it runs on a new goroutine, as before.
type workerDispatcher struct {
	work       chan func()
	done       chan struct{}
	wg         sync.WaitGroup
	throughput int
}

func newWorkerDispatcher(throughput int) *workerDispatcher {
	return startWorkers(throughput, (*workerDispatcher).worker)
}

// startWorkers starts a dispatcher whose workers each run loop.
func startWorkers(throughput int, loop func(*workerDispatcher)) *workerDispatcher {
	d := &workerDispatcher{work: make(chan func()), done: make(chan struct{}), throughput: throughput}
	for range 2 * runtime.GOMAXPROCS(0) {
		d.wg.Add(1)
		go loop(d)
	}
	return d
}

// sharedWorker is the loop of a worker of the shared system
// (SharedSystem), which lives as long as the process: testkit's leak
// check ignores the goroutines with it on their stack
// (testkit.SharedWorkerFunc).
func sharedWorker(d *workerDispatcher) { d.worker() }

func (d *workerDispatcher) worker() {
	defer d.wg.Done()
	for {
		select {
		case fn := <-d.work:
			fn()
		case <-d.done:
			return
		}
	}
}

// Schedule runs fn on an idle worker, or on a goroutine of its own.
func (d *workerDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go fn()
	}
}

// Throughput is how many messages a mailbox runs before yielding.
func (d *workerDispatcher) Throughput() int { return d.throughput }

// stop ends the workers once they finish what they run.
func (d *workerDispatcher) stop() {
	close(d.done)
	d.wg.Wait()
}
