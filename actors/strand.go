package actors

import "sync"

// strand runs the mailboxes of one link's actors (the Link, its Scheduler,
// its Carriers and its Streams) one at a time, in the order they were
// scheduled, on whichever goroutine holds it. A message from one of them
// to another is queued for the goroutine already running the strand
// instead of waking another: a request crosses a node on one goroutine
// from the socket read that brought it to the carrier write that sends it
// on, where a dispatcher per actor would hand it from goroutine to
// goroutine at each of four mailboxes (each hand-over a wake-up, the
// cost BENCHMARKS.md's per-hop breakdown measured).
//
// Each actor stays an actor: its mailbox, its messages, one message at a
// time. A mailbox that has run its throughput goes to the back of the line
// (box.run), so a busy stream does not hold up the link's others, and the
// strand never runs two of them at once, so nothing a link's actors share
// is touched by two goroutines at once either (they share nothing today;
// they still only exchange messages).
//
// The goroutine that holds the strand is a node worker, or a goroutine
// that brought work for it and runs it before going on (run): a carrier's
// reader delivers the frames it decoded and runs what they cause, then
// reads again. No actor blocks in Receive, so a strand is never held by a
// goroutine that waits.
type strand struct {
	mu      sync.Mutex
	q       ring[func()] // mailboxes scheduled, under mu
	running bool         // a goroutine holds the strand, under mu
	workers *workerDispatcher
	runAll  func() // a worker's run: until nothing is left (bound once)

	// The poller that wakes the link's streams (made on first use).
	pollMu     sync.Mutex
	poll       *poller
	pollClosed bool
}

// strandThroughput is how many messages one mailbox runs before the
// link's next actor has its turn.
const strandThroughput = 64

// strandRunMax is how many mailbox runs a goroutine that brought work (a
// carrier's reader) does before it hands the rest to a worker and goes
// back to its own work.
const strandRunMax = 256

func newStrand(workers *workerDispatcher) *strand {
	s := &strand{workers: workers}
	s.runAll = func() { s.run(0) }
	return s
}

// poller returns the link's poller, made on first use; nil where there is
// none (then, or once the link has stopped, streams wait with goroutines).
func (s *strand) poller(e *env) *poller {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	if s.poll == nil && !s.pollClosed {
		s.poll = newPoller(e, s)
	}
	return s.poll
}

// closePoller ends the poller, once the link's streams have stopped.
func (s *strand) closePoller() {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	s.pollClosed = true
	if s.poll != nil {
		s.poll.close()
		s.poll = nil
	}
}

// Schedule queues a mailbox run; if no goroutine holds the strand, a
// worker takes it.
func (s *strand) Schedule(fn func()) {
	s.mu.Lock()
	s.q.push(fn)
	if s.running {
		s.mu.Unlock()
		return
	}
	s.running = true
	s.mu.Unlock()
	s.workers.Schedule(s.runAll)
}

// Throughput is how many messages a mailbox runs before yielding.
func (s *strand) Throughput() int { return strandThroughput }

// claim makes the caller hold the strand if no goroutine does, and reports
// whether it did: what the caller then schedules waits for its run instead
// of waking a worker. A caller that claimed must call run next, without
// blocking in between.
func (s *strand) claim() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return false
	}
	s.running = true
	return true
}

// run runs, on the calling goroutine that holds the strand, up to max
// mailboxes (0: until none is left); what is left then goes to a worker.
func (s *strand) run(max int) {
	for i := 0; max == 0 || i < max; i++ {
		s.mu.Lock()
		fn, ok := s.q.pop()
		if !ok {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		fn()
	}
	s.mu.Lock()
	if s.q.n == 0 {
		s.running = false
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.workers.Schedule(s.runAll)
}
