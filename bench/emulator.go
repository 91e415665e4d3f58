package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Emulator is a userspace TCP relay that makes loopback behave like a long,
// narrow path: every connection made to Addr is relayed to the target with
// a one-way delay added in each direction and each direction's rate capped.
//
// The model, per connection:
//
//   - Setting up costs a round trip, as a TCP handshake across the path
//     would: the emulator dials the target one delay after accepting (the
//     SYN crossing), and the client's bytes start crossing two delays after
//     it connected (the SYN-ACK coming back), however early it wrote them.
//     A client that connects and sends a request at once gets its first
//     answer after two round trips, as over a real path.
//   - Each direction is a token bucket refilled at rate bytes per second
//     (one read deep) in front of a queue: a read of n bytes occupies the
//     link for n/rate, and its bytes arrive delay after the last one left.
//     The emulator reads ahead of the link by at most queueAhead (the
//     bottleneck's buffer); past that the sender meets TCP backpressure.
//   - End of input (FIN) crosses like data; a reset or a write failure
//     closes both sides at once.
//
// The bytes in flight live in rings mapped outside the Go heap, so they do
// not count in the heap figures of the peers measured through it. An
// Emulator is shared by the WAN benchmarks and the striping tests.
type Emulator struct {
	ln     net.Listener
	target string
	delay  time.Duration
	rate   int64
	done   chan struct{}
	wg     sync.WaitGroup
	held   atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// queueAhead is how far, in link time, the emulator reads ahead of the
// link: the depth of the bottleneck's queue. It also absorbs late timer
// wake-ups on a loaded machine without leaving the link idle.
const queueAhead = 5 * time.Millisecond

// maxRead is the largest read, and so the largest burst delivered at once.
const maxRead = 64 << 10

// NewEmulator starts an emulator on a loopback port relaying to target with
// delay added one way (a round trip costs twice delay) and each connection
// capped at rate bytes per second in each direction (0: no cap).
func NewEmulator(target string, delay time.Duration, rate int64) (*Emulator, error) {
	if delay < 0 || rate < 0 {
		return nil, fmt.Errorf("emulator: delay %v and rate %d must not be negative", delay, rate)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Emulator{ln: ln, target: target, delay: delay, rate: rate, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	e.wg.Add(1)
	go e.serve()
	return e, nil
}

// Addr is where clients connect.
func (e *Emulator) Addr() string { return e.ln.Addr().String() }

// Held is how many bytes are in flight inside the emulator now, all
// connections and directions together.
func (e *Emulator) Held() int64 { return e.held.Load() }

// Close stops accepting, closes every relayed connection and waits for
// every goroutine of the emulator to end.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.done)
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	err := e.ln.Close()
	e.wg.Wait()
	return err
}

func (e *Emulator) serve() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		if !e.track(c) {
			c.Close()
			return
		}
		e.wg.Add(1)
		go e.handle(c)
	}
}

func (e *Emulator) track(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *Emulator) untrack(c net.Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
	c.Close()
}

// sleepUntil waits for t, or returns false when the emulator closes first.
func (e *Emulator) sleepUntil(timer *time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-e.done:
			return false
		default:
			return true
		}
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-e.done:
		timer.Stop()
		return false
	}
}

func (e *Emulator) handle(c net.Conn) {
	defer e.wg.Done()
	defer e.untrack(c)
	accepted := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// The SYN crosses the path before the far side can be dialled.
	if !e.sleepUntil(timer, accepted.Add(e.delay)) {
		return
	}
	d, err := net.DialTimeout("tcp", e.target, 10*time.Second)
	if err != nil {
		// The refusal crosses back.
		if e.sleepUntil(timer, time.Now().Add(e.delay)) {
			abort(c)
		}
		return
	}
	if !e.track(d) {
		d.Close()
		return
	}
	defer e.untrack(d)
	// Nothing the client sent leaves before the handshake would have
	// completed at its end: one round trip after it connected.
	up, err := e.newPipe(d, c, accepted.Add(2*e.delay))
	if err != nil {
		return
	}
	down, err := e.newPipe(c, d, time.Time{})
	if err != nil {
		up.free()
		return
	}
	var wg sync.WaitGroup
	for _, p := range []*pipe{up, down} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run()
		}()
	}
	wg.Wait()
}

// abort closes c with a reset, as a failed path would.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// pipe is one direction of a relayed connection: a reader pacing src into a
// ring, and a writer delivering each read to dst when it is due.
type pipe struct {
	e         *Emulator
	dst, src  net.Conn
	notBefore time.Time
	ring      []byte

	mu       sync.Mutex
	in, out  int64   // bytes read into the ring, bytes written out, ever
	chunks   []chunk // read, not yet delivered, oldest first
	space    chan struct{}
	ready    chan struct{}
	aborted  bool
	finished bool // the writer is done (end delivered, or failed)
}

// chunk is one read: n bytes (or the end of input, with err) due at at.
type chunk struct {
	n   int
	at  time.Time
	end bool
	err error
}

func (e *Emulator) newPipe(dst, src net.Conn, notBefore time.Time) (*pipe, error) {
	size := 4 << 20
	if e.rate > 0 {
		// What is in flight on the path, plus the queue, with room to spare.
		inflight := float64(e.rate) * (e.delay + queueAhead).Seconds()
		size = int(inflight*1.25) + 256<<10
	}
	size = (size + 4095) &^ 4095
	ring, err := mapRing(size)
	if err != nil {
		return nil, fmt.Errorf("emulator: mapping a %d-byte ring: %w", size, err)
	}
	return &pipe{e: e, dst: dst, src: src, notBefore: notBefore, ring: ring,
		space: make(chan struct{}, 1), ready: make(chan struct{}, 1)}, nil
}

func (p *pipe) free() { unmapRing(p.ring) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run relays until the end of input has been delivered or either side
// fails, then frees the ring.
func (p *pipe) run() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.write()
	}()
	p.read()
	<-done
	p.mu.Lock()
	p.e.held.Add(-(p.in - p.out))
	p.mu.Unlock()
	p.free()
}

// fail closes both sides at once and wakes both halves of the pipe.
func (p *pipe) fail() {
	p.mu.Lock()
	p.aborted = true
	p.mu.Unlock()
	signal(p.space)
	signal(p.ready)
	abort(p.src)
	abort(p.dst)
}

// room waits for free space in the ring and returns the contiguous part of
// it, at most maxRead bytes; nil once the pipe failed or the emulator
// closed.
func (p *pipe) room() []byte {
	size := int64(len(p.ring))
	for {
		p.mu.Lock()
		aborted, finished := p.aborted, p.finished
		free := size - (p.in - p.out)
		start := p.in % size
		p.mu.Unlock()
		if aborted || finished {
			return nil
		}
		if free > 0 {
			n := min(free, size-start, maxRead)
			return p.ring[start : start+n]
		}
		select {
		case <-p.space:
		case <-p.e.done:
			return nil
		}
	}
}

func (p *pipe) push(c chunk) {
	p.mu.Lock()
	p.in += int64(c.n)
	p.chunks = append(p.chunks, c)
	p.mu.Unlock()
	p.e.held.Add(int64(c.n))
	signal(p.ready)
}

// read paces src into the ring.
func (p *pipe) read() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var next time.Time // when the link is free to start the next read
	for {
		buf := p.room()
		if buf == nil {
			return
		}
		n, err := p.src.Read(buf)
		now := time.Now()
		start := latest(now, p.notBefore, next)
		if n > 0 {
			next = start
			if p.e.rate > 0 {
				next = start.Add(time.Duration(float64(n) / float64(p.e.rate) * float64(time.Second)))
			}
			p.push(chunk{n: n, at: next.Add(p.e.delay)})
			// The token bucket: stay at most queueAhead ahead of the link.
			if !p.e.sleepUntil(timer, next.Add(-queueAhead)) {
				return
			}
			start = next
		}
		if err != nil {
			p.push(chunk{end: true, err: err, at: start.Add(p.e.delay)})
			return
		}
	}
}

// write delivers each chunk to dst when it is due.
func (p *pipe) write() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	size := int64(len(p.ring))
	defer func() {
		p.mu.Lock()
		p.finished = true
		p.mu.Unlock()
		signal(p.space)
	}()
	for {
		p.mu.Lock()
		if p.aborted {
			p.mu.Unlock()
			return
		}
		if len(p.chunks) == 0 {
			p.mu.Unlock()
			select {
			case <-p.ready:
				continue
			case <-p.e.done:
				return
			}
		}
		c := p.chunks[0]
		p.chunks = p.chunks[1:]
		start := p.out % size
		p.mu.Unlock()
		if !p.e.sleepUntil(timer, c.at) {
			return
		}
		if c.end {
			if errors.Is(c.err, io.EOF) {
				if tc, ok := p.dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return
			}
			p.fail()
			return
		}
		_, err := p.dst.Write(p.ring[start : start+int64(c.n)])
		p.mu.Lock()
		p.out += int64(c.n)
		p.mu.Unlock()
		p.e.held.Add(-int64(c.n))
		signal(p.space)
		if err != nil {
			p.fail()
			return
		}
	}
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}
