package actors

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

// shareClientActor owns one client socket of a Share. Its reader goroutine
// reads the client into pooled buffers, one per read, and sends each to
// the upstream actor while the clients' input waiting for the upstream is
// under its bound; its writer goroutine writes what the hub queued for the
// client and lets go of each chunk.
type shareClientActor struct {
	env      *env
	self     *actor.PID
	hub      *actor.PID
	upstream *actor.PID
	conn     net.Conn
	c        *shareClient
	win      *inflow
	eof      bool // the client closed its sending side
	left     bool
}

func newShareClient(e *env, conn net.Conn, c *shareClient, hub, upstream *actor.PID, win *inflow) *shareClientActor {
	return &shareClientActor{env: e, conn: conn, c: c, hub: hub, upstream: upstream, win: win}
}

func (a *shareClientActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *clientIOEnd:
		if a.left {
			return
		}
		if !m.write && errors.Is(m.err, io.EOF) {
			// A half-close: the client has nothing more to say but
			// still listens. (One that closed altogether shows when a
			// write to it fails.)
			a.eof = true
			a.env.log.Debug("client stopped sending", "client", a.c.addr)
			return
		}
		a.left = true
		var reason string
		switch {
		case m.write && a.eof:
			reason = "closed by client"
		case m.write:
			reason = "write: " + m.err.Error()
		default:
			reason = "read: " + m.err.Error()
		}
		// The hub forgets the client, logs why, and stops this actor.
		ctx.Send(a.hub, &clientLeft{pid: a.self, reason: reason})
	case *actor.Started:
		a.self = ctx.Self()
		conn := a.conn
		a.env.goroutine(func() { a.readLoop(conn) })
		a.env.goroutine(func() { a.writeLoop(conn) })
	case *actor.Stopping:
		a.c.q.close()
		a.conn.Close()
	}
}

func (a *shareClientActor) readLoop(conn net.Conn) {
	rd := newSockReader(conn)
	for {
		if !a.win.wait() {
			return
		}
		bufs, n, err := rd.read(shareChunk, shareChunk)
		if n > 0 {
			a.win.add(int64(n))
			a.c.in.Add(int64(n))
			for _, b := range bufs {
				a.env.send(a.upstream, &clientInput{buf: b})
			}
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.env.send(a.self, &clientIOEnd{err: err})
			}
			return
		}
	}
}

func (a *shareClientActor) writeLoop(conn net.Conn) {
	var (
		chunks []outChunk
		nb     net.Buffers
	)
	for {
		var ok bool
		chunks, ok = a.c.q.take(chunks[:0], shareWriteBatch)
		if !ok {
			return
		}
		nb = nb[:0]
		total := 0
		for _, ch := range chunks {
			p := ch.sb.b.B[ch.off:]
			nb = append(nb, p)
			total += len(p)
		}
		w := nb
		n, err := w.WriteTo(conn)
		for i, ch := range chunks {
			ch.sb.release()
			chunks[i] = outChunk{}
		}
		a.c.out.Add(n)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.env.send(a.self, &clientIOEnd{err: err, write: true})
			}
			return
		}
	}
}

// sharedBuf is a pooled buffer held by several clients' queues at once;
// the last to let go returns it to the pool.
type sharedBuf struct {
	b    *engine.Buffer
	refs atomic.Int32
}

func (s *sharedBuf) release() {
	if s.refs.Add(-1) == 0 {
		engine.PutBuffer(s.b)
	}
}

// outChunk is a queued chunk from its offset on (what the drops left of
// it).
type outChunk struct {
	sb  *sharedBuf
	off int
}

func (c outChunk) len() int { return len(c.sb.b.B) - c.off }

// outQueue is what is waiting to be written to one client: at most limit
// bytes (but see SlowWait). The hub pushes; the client's writer takes.
type outQueue struct {
	mu     sync.Mutex
	chunks []outChunk
	head   int
	bytes  int
	limit  int
	policy SlowPolicy
	closed bool
	wake   chan struct{}

	// Under SlowWait (wait is set): full from when the queue reaches its
	// limit until it drains to half of it, pausing wait.gate meanwhile;
	// stall counts the times it became full, timer fires wait.stuck once
	// a stall lasts wait.timeout.
	wait      *queueWait
	full      bool
	fullSince time.Time
	stall     uint64
	timer     *time.Timer
}

// newOutQueue makes a client's queue; wait is for SlowWait, nil otherwise.
func newOutQueue(limit int, policy SlowPolicy, wait *queueWait) *outQueue {
	if policy != SlowWait {
		wait = nil
	}
	return &outQueue{limit: limit, policy: policy, wait: wait, wake: make(chan struct{}, 1)}
}

// push queues sb, taking over one of its references. A chunk always fits
// in an empty queue; past that, when the queue would hold more than its
// limit, SlowDrop makes room by dropping the oldest bytes queued (whole
// chunks, and the start of one) and returns how many, SlowDisconnect
// queues nothing and returns overflow, and SlowWait queues it all the same
// and marks the queue full once it reaches its limit, which pauses the
// upstream (what it had already read, at most shareInflight bytes, still
// comes).
func (q *outQueue) push(sb *sharedBuf) (dropped int, overflow bool) {
	n := len(sb.b.B)
	q.mu.Lock()
	if q.closed || n == 0 {
		q.mu.Unlock()
		sb.release()
		return 0, false
	}
	if q.policy != SlowWait && q.bytes > 0 && q.bytes+n > q.limit {
		if q.policy == SlowDisconnect {
			q.mu.Unlock()
			sb.release()
			return 0, true
		}
		for over := q.bytes + n - q.limit; over > 0 && q.head < len(q.chunks); {
			h := &q.chunks[q.head]
			if l := h.len(); l <= over {
				h.sb.release()
				*h = outChunk{}
				q.head++
				q.bytes -= l
				dropped += l
				over -= l
			} else {
				h.off += over
				q.bytes -= over
				dropped += over
				over = 0
			}
		}
		q.compact()
	}
	q.chunks = append(q.chunks, outChunk{sb: sb})
	q.bytes += n
	if q.wait != nil && !q.full && q.bytes >= q.limit {
		q.full, q.fullSince = true, time.Now()
		q.stall++
		q.wait.gate.pause()
		stall, stuck := q.stall, q.wait.stuck
		q.timer = time.AfterFunc(q.wait.timeout, func() { stuck(stall) })
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return dropped, false
}

// compact moves the live chunks to the front once the dead ones are half
// the slice. The caller holds mu.
func (q *outQueue) compact() {
	if q.head == len(q.chunks) {
		q.chunks, q.head = q.chunks[:0], 0
		return
	}
	if q.head > 64 && q.head*2 >= len(q.chunks) {
		k := copy(q.chunks, q.chunks[q.head:])
		clear(q.chunks[k:])
		q.chunks, q.head = q.chunks[:k], 0
	}
}

// take waits for chunks and moves them into dst, up to max bytes (at
// least one chunk); ok is false once the queue is closed.
func (q *outQueue) take(dst []outChunk, max int) ([]outChunk, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return dst, false
		}
		if q.head < len(q.chunks) {
			got := 0
			for q.head < len(q.chunks) && (got == 0 || got+q.chunks[q.head].len() <= max) {
				ch := q.chunks[q.head]
				q.chunks[q.head] = outChunk{}
				q.head++
				dst = append(dst, ch)
				got += ch.len()
			}
			q.bytes -= got
			q.compact()
			if q.full && q.bytes <= q.limit/2 {
				q.unfull()
			}
			q.mu.Unlock()
			return dst, true
		}
		q.mu.Unlock()
		<-q.wake
	}
}

// unfull ends a stall: the upstream may be read again (for this client).
// The caller holds mu.
func (q *outQueue) unfull() {
	q.full = false
	q.timer.Stop()
	q.timer = nil
	q.wait.gate.resume()
}

// queued is what is waiting.
func (q *outQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// isFull tells whether the queue is full, holding the upstream (SlowWait).
func (q *outQueue) isFull() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.full
}

// stuck tells whether the queue is still in its stall-th stall, and for
// how long it has been.
func (q *outQueue) stuck(stall uint64) (time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.full || q.stall != stall {
		return 0, false
	}
	return time.Since(q.fullSince), true
}

// close lets go of everything queued and stops the writer.
func (q *outQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	chunks := q.chunks[q.head:]
	q.chunks, q.head, q.bytes = nil, 0, 0
	if q.full {
		q.unfull()
	}
	q.mu.Unlock()
	for _, ch := range chunks {
		ch.sb.release()
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// inflow bounds the clients' bytes waiting for the upstream, all clients
// together: a client's reader waits for room before each read, and the
// upstream's writer makes room as it writes.
type inflow struct {
	mu     sync.Mutex
	used   int64
	limit  int64
	closed bool
	room   chan struct{} // closed, and replaced, when room is made
}

func newInflow(limit int64) *inflow { return &inflow{limit: limit, room: make(chan struct{})} }

// wait returns once there is room, or false once closed.
func (w *inflow) wait() bool {
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return false
		}
		if w.used < w.limit {
			w.mu.Unlock()
			return true
		}
		ch := w.room
		w.mu.Unlock()
		<-ch
	}
}

func (w *inflow) add(n int64) {
	w.mu.Lock()
	w.used += n
	w.mu.Unlock()
}

func (w *inflow) release(n int64) {
	w.mu.Lock()
	w.used -= n
	close(w.room)
	w.room = make(chan struct{})
	w.mu.Unlock()
}

func (w *inflow) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.room)
		w.room = make(chan struct{})
	}
	w.mu.Unlock()
}
