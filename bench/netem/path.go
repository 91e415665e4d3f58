package netem

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// Rates, in bytes per second.
const (
	// Mbit is a megabit a second.
	Mbit = 1_000_000 / 8
	// MB is a megabyte (10^6 bytes) a second.
	MB = 1_000_000
)

// Path is one emulated path. Each direction has its own bottleneck of the
// same figures: the path is symmetric.
type Path struct {
	// Rate is the bottleneck, bytes a second each way; 0 is no limit.
	Rate int64
	// Delay is added one way: a round trip costs twice Delay.
	Delay time.Duration
	// Loss is the fraction of packets dropped at random, each way (0.01
	// is 1%).
	Loss float64
	// Queue is the bottleneck's buffer, in time at Rate: a packet that
	// would wait longer than that to be sent is dropped (tail drop). 0 is
	// DefaultQueue(Delay).
	Queue time.Duration
}

// DefaultQueue is the bottleneck buffer of a path without one: a round
// trip's worth (a bandwidth-delay product, what one TCP flow needs to keep
// the link busy), at least 10 ms.
func DefaultQueue(delay time.Duration) time.Duration {
	return max(2*delay, 10*time.Millisecond)
}

// RTT is the path's round trip with empty queues.
func (p Path) RTT() time.Duration { return 2 * p.Delay }

func (p Path) check() error {
	if p.Rate < 0 || p.Delay < 0 || p.Queue < 0 || !(p.Loss >= 0 && p.Loss <= 1) {
		return fmt.Errorf("%w: %+v: rate, delay and queue must not be negative, loss within [0, 1]", ErrBadPath, p)
	}
	return nil
}

func (p Path) queue() time.Duration {
	if p.Queue > 0 {
		return p.Queue
	}
	return DefaultQueue(p.Delay)
}

// Stats counts what one path did with the packets it was given.
type Stats struct {
	// Delivered packets and their bytes, both ways.
	Delivered, Bytes int64
	// Lost at random (Loss), dropped by a full queue, dropped while cut.
	Lost, Overflow, Cut int64
}

// packet is one IPv4 packet held by a path until it is due. Its buffer
// comes from the shaper's pool and goes back once written (the writer owns
// it from the moment it is queued).
type packet struct {
	buf *[]byte
	n   int
	due time.Time
}

// direction is one way of a path: its bottleneck and what waits to come
// out of it, in due order (a constant delay after a serial link keeps the
// order).
type direction struct {
	free time.Time // when the bottleneck has sent what it holds
	q    []packet
}

// shaper runs one path over a packet device (a tun): it reads each packet
// the kernel routes there, decides its fate and writes it back when due.
// One reader and one writer goroutine; the rest is under mu.
type shaper struct {
	dev  io.ReadWriteCloser
	src  [4]byte // the path's source address: packets from it go up
	mtu  int
	pool sync.Pool
	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	path  Path
	cut   bool
	dirs  [2]direction // up (from src), down (to src)
	stats Stats
}

func newShaper(dev io.ReadWriteCloser, src [4]byte, mtu int, p Path) *shaper {
	s := &shaper{dev: dev, src: src, mtu: mtu, path: p,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.pool.New = func() any {
		b := make([]byte, mtu+64)
		return &b
	}
	s.wg.Add(2)
	go s.read()
	go s.write()
	return s
}

// close stops both goroutines (the device's close ends the reader's read)
// and waits for them.
func (s *shaper) close() {
	close(s.done)
	s.dev.Close()
	s.wg.Wait()
}

func (s *shaper) read() {
	defer s.wg.Done()
	for {
		buf := s.pool.Get().(*[]byte)
		n, err := s.dev.Read(*buf)
		if err != nil {
			s.pool.Put(buf)
			return
		}
		if s.admit(packet{buf: buf, n: n}, time.Now()) {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		} else {
			s.pool.Put(buf)
		}
	}
}

// admit decides a packet's fate: dropped (false), or queued in its
// direction with the time it is due out of the path.
func (s *shaper) admit(pk packet, now time.Time) bool {
	b := (*pk.buf)[:pk.n]
	if pk.n < 20 || b[0]>>4 != 4 {
		return false // not IPv4: nothing here sends any
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.path
	switch {
	case s.cut:
		s.stats.Cut++
		return false
	case p.Loss > 0 && rand.Float64() < p.Loss:
		s.stats.Lost++
		return false
	}
	d := &s.dirs[1]
	if [4]byte(b[12:16]) == s.src {
		d = &s.dirs[0]
	}
	out := now
	if p.Rate > 0 {
		start := d.free
		if start.Before(now) {
			start = now
		}
		if start.Sub(now) > p.queue() {
			s.stats.Overflow++
			return false
		}
		out = start.Add(time.Duration(int64(pk.n) * int64(time.Second) / p.Rate))
		d.free = out
	}
	pk.due = out.Add(p.Delay)
	d.q = append(d.q, pk)
	return true
}

// due takes the packets due by now, in order, into out; it says when the
// next one left is due (zero when none is queued).
func (s *shaper) due(now time.Time, out []packet) ([]packet, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for i := range s.dirs {
		d := &s.dirs[i]
		k := 0
		for k < len(d.q) && !d.q[k].due.After(now) {
			out = append(out, d.q[k])
			s.stats.Delivered++
			s.stats.Bytes += int64(d.q[k].n)
			k++
		}
		d.q = d.q[:copy(d.q, d.q[k:])]
		if len(d.q) > 0 && (next.IsZero() || d.q[0].due.Before(next)) {
			next = d.q[0].due
		}
	}
	return out, next
}

func (s *shaper) write() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var out []packet
	for {
		var next time.Time
		out, next = s.due(time.Now(), out[:0])
		for _, pk := range out {
			// A write fails only once the device is closing; the packet
			// is lost as on a path going down.
			_, _ = s.dev.Write((*pk.buf)[:pk.n])
			s.pool.Put(pk.buf)
		}
		if len(out) > 0 {
			continue
		}
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tc = timer.C
		}
		select {
		case <-s.done:
			s.drop()
			return
		case <-s.wake:
		case <-tc:
		}
		timer.Stop()
	}
}

// drop empties both queues, giving their buffers back.
func (s *shaper) drop() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropLocked()
}

func (s *shaper) dropLocked() int64 {
	var n int64
	for i := range s.dirs {
		for _, pk := range s.dirs[i].q {
			s.pool.Put(pk.buf)
			n++
		}
		s.dirs[i].q = s.dirs[i].q[:0]
	}
	return n
}

// setCut black-holes the path (on) or opens it again (off); what it held
// when cut is lost with it.
func (s *shaper) setCut(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on && !s.cut {
		s.stats.Cut += s.dropLocked()
	}
	s.cut = on
}

func (s *shaper) set(p Path) {
	s.mu.Lock()
	s.path = p
	s.mu.Unlock()
}

func (s *shaper) snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
