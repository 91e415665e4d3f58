package actors

import (
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// What a Share does with a client too slow to take what the upstream
// sends: the policies, the gate that holds the upstream's reader while a
// client catches up (SlowWait), and the logs of the drops (SlowDrop).

// SlowPolicy is what a Share does with a client too slow to take what the
// upstream sends. The zero value is SlowWait.
type SlowPolicy int

const (
	// SlowWait stops reading the upstream while the client's buffer is
	// full (TCP then pushes back on the upstream), until the client has
	// drained it to half; a client whose buffer stays full for the
	// ShareConfig's SlowTimeout is disconnected. Nothing is dropped: every
	// client still connected receives everything.
	SlowWait SlowPolicy = iota
	// SlowDrop drops the oldest bytes waiting for the client, and counts
	// them. The upstream and the other clients never wait for it.
	SlowDrop
	// SlowDisconnect closes the client at once.
	SlowDisconnect
)

func (p SlowPolicy) String() string {
	switch p {
	case SlowDrop:
		return "drop"
	case SlowDisconnect:
		return "disconnect"
	}
	return "wait"
}

// ParseSlowPolicy parses "wait", "drop" or "disconnect".
func ParseSlowPolicy(s string) (SlowPolicy, error) {
	switch s {
	case "wait":
		return SlowWait, nil
	case "drop":
		return SlowDrop, nil
	case "disconnect":
		return SlowDisconnect, nil
	}
	return 0, fmt.Errorf("bad slow-client policy %q: want wait, drop or disconnect", s)
}

// DefaultSlowTimeout is how long SlowWait waits for a client whose buffer
// is full, when ShareConfig.SlowTimeout is 0.
const DefaultSlowTimeout = 10 * time.Second

// shareInflight bounds the bytes read from the upstream that the hub has
// not yet queued for the clients: so that a full client pauses the
// upstream within a few reads.
const shareInflight = 4 * shareChunk

// upstreamGate holds the upstream's reader before each read while a
// client's queue is full (SlowWait), or while the hub has shareInflight
// bytes still to queue. It outlives upstream sessions.
type upstreamGate struct {
	mu       sync.Mutex
	inflight int64
	full     int // queues full (see outQueue.stall)
	closed   bool
	waiting  bool          // the reader waits on room
	room     chan struct{} // closed, and replaced, when the gate may open
}

func newUpstreamGate() *upstreamGate { return &upstreamGate{room: make(chan struct{})} }

// wait returns true once the upstream may be read, false once the gate or
// done is closed.
func (g *upstreamGate) wait(done <-chan struct{}) bool {
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return false
		}
		if g.full == 0 && g.inflight < shareInflight {
			g.mu.Unlock()
			return true
		}
		ch := g.room
		g.waiting = true
		g.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

// read counts n bytes read for the hub; queued, that the hub queued them.
func (g *upstreamGate) read(n int) {
	g.mu.Lock()
	g.inflight += int64(n)
	g.mu.Unlock()
}

func (g *upstreamGate) queued(n int) {
	g.mu.Lock()
	g.inflight -= int64(n)
	if g.inflight < shareInflight {
		g.openLocked()
	}
	g.mu.Unlock()
}

// pause and resume count a queue becoming full and no longer full.
func (g *upstreamGate) pause() {
	g.mu.Lock()
	g.full++
	g.mu.Unlock()
}

func (g *upstreamGate) resume() {
	g.mu.Lock()
	g.full--
	if g.full == 0 {
		g.openLocked()
	}
	g.mu.Unlock()
}

// paused tells whether a full client holds the upstream.
func (g *upstreamGate) paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.full > 0
}

func (g *upstreamGate) close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		g.openLocked()
	}
	g.mu.Unlock()
}

// openLocked wakes a waiting reader to look again. The caller holds mu.
func (g *upstreamGate) openLocked() {
	if g.waiting {
		g.waiting = false
		close(g.room)
		g.room = make(chan struct{})
	}
}

// queueWait is what an outQueue under SlowWait needs: the gate it pauses
// while full, and what to do when it stays full for timeout.
type queueWait struct {
	gate    *upstreamGate
	timeout time.Duration
	// stuck is called, on a timer's goroutine, when the queue's stall
	// (counted by stall) outlasts timeout.
	stuck func(stall uint64)
}

// slowStuck tells the hub a client's buffer has been full for the slow
// timeout, in its stall-th stall.
type slowStuck struct {
	c     *shareClient
	stall uint64
}

// waitFor is the queueWait of a new client's queue, nil unless SlowWait.
func (h *shareHub) waitFor(c *shareClient) *queueWait {
	if h.cfg.Slow != SlowWait {
		return nil
	}
	self := h.self
	return &queueWait{gate: h.gate, timeout: h.cfg.SlowTimeout,
		stuck: func(stall uint64) { h.env.send(self, &slowStuck{c: c, stall: stall}) }}
}

// stuck disconnects a client whose buffer stayed full for the slow
// timeout, unless it has drained (or left) since.
func (h *shareHub) stuck(ctx actor.Context, m *slowStuck) {
	c := m.c
	if c.pid == nil || h.clients[c.pid.Id] != c {
		return
	}
	d, ok := c.q.stuck(m.stall)
	if !ok {
		return
	}
	h.SlowDisconnect(ctx, c, fmt.Sprintf("too slow: its buffer (%d bytes) stayed full for %v while the upstream waited for it",
		h.cfg.ClientBuffer, h.cfg.SlowTimeout), "full_for", d)
}

// SlowDisconnect closes a slow client, counts and logs it.
func (h *shareHub) SlowDisconnect(ctx actor.Context, c *shareClient, reason string, attrs ...any) {
	h.state.slowDisconnects.Add(1)
	h.env.log.Warn("slow client disconnected", append([]any{"client", c.addr, "reason", reason,
		"queued", c.q.queued(), "client_buffer", h.cfg.ClientBuffer, "slow", h.cfg.Slow.String()}, attrs...)...)
	ctx.Stop(c.pid)
	h.leave(c, reason)
}

// dropped counts bytes dropped for a slow client, and logs the first drop
// after a quiet spell; reportDrops logs the rest.
func (h *shareHub) dropped(c *shareClient, n int) {
	c.dropped.Add(int64(n))
	h.state.dropped.Add(int64(n))
	if c.dropping {
		return
	}
	c.dropping = true
	h.env.log.Warn("slow client: dropping its oldest data", "client", c.addr, "dropped", c.dropped.Load(), "client_buffer", h.cfg.ClientBuffer)
	c.reported = c.dropped.Load()
	if h.report == nil {
		self := h.self
		h.report = time.AfterFunc(h.cfg.dropLogInterval, func() { h.env.send(self, &dropReport{}) })
	}
}

func (h *shareHub) reportDrops() {
	h.report = nil
	again := false
	for _, c := range h.clients {
		if !c.dropping {
			continue
		}
		total := c.dropped.Load()
		if total == c.reported {
			c.dropping = false // quiet since the last report
			continue
		}
		h.env.log.Warn("slow client dropped data", "client", c.addr, "dropped", total, "since_last", total-c.reported)
		c.reported = total
		again = true
	}
	if again && !h.closing {
		self := h.self
		h.report = time.AfterFunc(h.cfg.dropLogInterval, func() { h.env.send(self, &dropReport{}) })
	}
}
