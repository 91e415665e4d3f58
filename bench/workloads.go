package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BlockSize is the payload of one bulk frame.
const BlockSize = 128 << 10

// Push sends size bytes (rounded up to whole frames of at most BlockSize)
// through addr to a Sink and returns once the sink confirms it received
// them all, intact.
func Push(addr string, size int64) error {
	_, err := push(addr, size, nil, nil)
	return err
}

// PushParallel runs streams Pushes of size/streams bytes each at once and
// returns the bytes delivered.
func PushParallel(addr string, size int64, streams int) (int64, error) {
	return pushAll(addr, streams, size/int64(streams), nil, nil)
}

// PushUntil sends on streams connections at once through addr to a Sink
// until stop is closed, then ends each and checks the sink received all of
// it. sent, when not nil, counts the bytes as they are written. It returns
// the bytes delivered.
func PushUntil(addr string, streams int, stop <-chan struct{}, sent *atomic.Int64) (int64, error) {
	return pushAll(addr, streams, -1, stop, sent)
}

func pushAll(addr string, streams int, each int64, stop <-chan struct{}, sent *atomic.Int64) (int64, error) {
	var wg sync.WaitGroup
	var total atomic.Int64
	errs := make([]error, streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := push(addr, each, stop, sent)
			total.Add(n)
			errs[i] = err
		}()
	}
	wg.Wait()
	return total.Load(), errors.Join(errs...)
}

// push sends frames of limit bytes in all (until stop, when limit < 0),
// then the end frame, and checks the sink's count.
func push(addr string, limit int64, stop <-chan struct{}, sent *atomic.Int64) (int64, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return pushConn(c, limit, stop, sent)
}

// pushConn is push on a connection already made (which the caller closes).
func pushConn(c net.Conn, limit int64, stop <-chan struct{}, sent *atomic.Int64) (int64, error) {
	block := make([]byte, BlockSize)
	for i := range block {
		block[i] = byte(i * 7)
	}
	var hdr [frameHeader]byte
	var n int64
	for seq := uint32(0); limit < 0 || n < limit; seq++ {
		if stop != nil {
			select {
			case <-stop:
				limit = n
				continue
			default:
			}
		}
		k := int64(len(block))
		if limit >= 0 {
			k = max(8, min(k, limit-n))
		}
		binary.BigEndian.PutUint32(hdr[:], uint32(k))
		binary.BigEndian.PutUint32(hdr[4:], seq)
		binary.BigEndian.PutUint32(block, seq)
		binary.BigEndian.PutUint32(block[k-4:], seq)
		bufs := net.Buffers{hdr[:], block[:k]}
		if _, err := bufs.WriteTo(c); err != nil {
			return n, err
		}
		n += k
		if sent != nil {
			sent.Add(k)
		}
	}
	binary.BigEndian.PutUint64(hdr[:], 0)
	if _, err := c.Write(hdr[:]); err != nil {
		return n, err
	}
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return n, fmt.Errorf("reading the sink's count (%d bytes sent): %w", n, err)
	}
	if got := int64(binary.BigEndian.Uint64(b[:])); got != n {
		return n, fmt.Errorf("sink received %d bytes, sent %d", got, n)
	}
	return n, nil
}

// RoundTrips sends up to n requests of size bytes (at least 8), one at a
// time on one connection through addr to an Echo, checks that each answer
// is its request, and returns each round trip's time. It stops early when
// stop is closed, after the first; done, when not nil, counts the round
// trips.
func RoundTrips(addr string, n, size int, stop <-chan struct{}, done *atomic.Int64) ([]time.Duration, error) {
	if size < 8 {
		return nil, fmt.Errorf("round trips: %d-byte requests, want at least 8", size)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return roundTripsOn(c, n, size, stop, done)
}

// roundTripsOn is RoundTrips on a connection already made.
func roundTripsOn(c net.Conn, n, size int, stop <-chan struct{}, done *atomic.Int64) ([]time.Duration, error) {
	req := make([]byte, size)
	for i := range req {
		req[i] = byte(i)
	}
	resp := make([]byte, size)
	rtts := make([]time.Duration, 0, min(n, 1<<20))
	for i := 0; i < n; i++ {
		// A timed run makes one round trip at least, however late the
		// tunnel was ready on a busy machine: a figure needs one.
		if stop != nil && i > 0 {
			select {
			case <-stop:
				return rtts, nil
			default:
			}
		}
		binary.BigEndian.PutUint64(req, uint64(i))
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			return rtts, err
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return rtts, fmt.Errorf("round trip %d: %w", i, err)
		}
		rtts = append(rtts, time.Since(start))
		if !bytes.Equal(req, resp) {
			return rtts, fmt.Errorf("round trip %d: the answer is not the request", i)
		}
		if done != nil {
			done.Add(1)
		}
	}
	return rtts, nil
}

// FirstResponse connects through addr to an Echo, sends one size-byte
// request at once and returns the time from starting to connect to having
// the whole answer, checked.
func FirstResponse(addr string, size int) (time.Duration, error) {
	req := make([]byte, size)
	for i := range req {
		req[i] = byte(i * 13)
	}
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	resp := make([]byte, size)
	if _, err := io.ReadFull(c, resp); err != nil {
		return 0, fmt.Errorf("first response: %w", err)
	}
	d := time.Since(start)
	if !bytes.Equal(req, resp) {
		return d, errors.New("first response: the answer is not the request")
	}
	return d, nil
}

// Percentile is the p-th percentile (0 < p ≤ 100, nearest rank) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// IdleSet is connections opened through a tunnel to a Hold and kept idle.
type IdleSet struct{ conns []net.Conn }

// OpenIdle opens n connections through addr to a Hold, 32 at a time, and
// returns once each has had its byte answered end to end (so each stream
// is fully set up on both peers). opened, when not nil, counts them.
func OpenIdle(addr string, n int, opened *atomic.Int64) (*IdleSet, error) {
	s := &IdleSet{conns: make([]net.Conn, n)}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					errs[w] = fmt.Errorf("stream %d: %w", i, err)
					return
				}
				s.conns[i] = c
				b := [1]byte{byte(i)}
				if _, err := c.Write(b[:]); err != nil {
					errs[w] = fmt.Errorf("stream %d: %w", i, err)
					return
				}
				if _, err := io.ReadFull(c, b[:]); err != nil {
					errs[w] = fmt.Errorf("stream %d: %w", i, err)
					return
				}
				if b[0] != byte(i) {
					errs[w] = fmt.Errorf("stream %d: answered %d", i, b[0])
					return
				}
				if opened != nil {
					opened.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes every connection, with a reset, so that no TIME_WAIT is
// left to hold ephemeral ports.
func (s *IdleSet) Close() {
	for _, c := range s.conns {
		if c != nil {
			abort(c)
		}
	}
}

// Memory is the process's memory at one moment.
type Memory struct {
	Heap  int64 // live heap objects (runtime.MemStats.HeapAlloc)
	Stack int64 // goroutine stacks (StackInuse)
	RSS   int64 // resident set (VmRSS)
}

// MeasureMemory collects garbage, returns freed memory to the OS and
// samples what is left.
func MeasureMemory() Memory {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Memory{Heap: int64(ms.HeapAlloc), Stack: int64(ms.StackInuse), RSS: readRSS()}
}

// Sub is m - o.
func (m Memory) Sub(o Memory) Memory {
	return Memory{Heap: m.Heap - o.Heap, Stack: m.Stack - o.Stack, RSS: m.RSS - o.RSS}
}

// Add is m + o.
func (m Memory) Add(o Memory) Memory {
	return Memory{Heap: m.Heap + o.Heap, Stack: m.Stack + o.Stack, RSS: m.RSS + o.RSS}
}

// Per is m divided by n.
func (m Memory) Per(n int) Memory {
	return Memory{Heap: m.Heap / int64(n), Stack: m.Stack / int64(n), RSS: m.RSS / int64(n)}
}

// readRSS is VmRSS from /proc/self/status, in bytes (0 where there is no
// such file).
func readRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// IdleResult is what holding streams idle through one system cost.
type IdleResult struct {
	Streams int
	Open    time.Duration // opening them all, end to end
	// Near and Far are each peer's process's growth while the streams
	// were open and idle.
	Near, Far Memory
}

// PerStream is both peers' growth together, per stream.
func (r IdleResult) PerStream() Memory {
	return Memory{Heap: r.Near.Heap + r.Far.Heap, Stack: r.Near.Stack + r.Far.Stack, RSS: r.Near.RSS + r.Far.RSS}.Per(r.Streams)
}

// Idle opens n streams through sys to a Hold and measures what holding
// them idle costs both peers. The Hold and each peer run in a helper
// process of their own (see HelperEnv), the clients in this one; each
// peer's process measures its growth (after collecting garbage and
// returning freed memory to the OS) between its link being up and every
// stream being open and answered end to end. opened, when not nil, counts
// the streams as they open.
func Idle(sys System, n int, opened *atomic.Int64) (IdleResult, error) {
	res := IdleResult{Streams: n}
	if sys.Far == nil || sys.Near == nil {
		return res, fmt.Errorf("%s has no peers to hold streams", sys.Name)
	}
	if err := RaiseFileLimit(uint64(n + 256)); err != nil {
		return res, err
	}
	streams := strconv.Itoa(n)
	hold, err := startHelper("hold")
	if err != nil {
		return res, err
	}
	defer hold.Close()
	far, err := startHelper("far", sys.Name, hold.addr, streams)
	if err != nil {
		return res, err
	}
	defer far.Close()
	near, err := startHelper("near", sys.Name, far.addr, hold.addr, streams)
	if err != nil {
		return res, err
	}
	defer near.Close()
	var before [2]Memory
	for i, h := range []*helper{near, far} {
		if before[i], err = h.memory(); err != nil {
			return res, err
		}
	}
	start := time.Now()
	set, err := OpenIdle(near.addr, n, opened)
	if err != nil {
		return res, fmt.Errorf("%s: %w", sys.Name, err)
	}
	defer set.Close()
	res.Open = time.Since(start)
	f, err := hold.ask("held")
	if err != nil {
		return res, err
	}
	if len(f) != 1 || f[0] != streams {
		return res, fmt.Errorf("%s: the server holds %v streams, want %d", sys.Name, f, n)
	}
	for i, p := range []struct {
		h    *helper
		grew *Memory
	}{{near, &res.Near}, {far, &res.Far}} {
		after, err := p.h.memory()
		if err != nil {
			return res, err
		}
		*p.grew = after.Sub(before[i])
	}
	return res, nil
}
