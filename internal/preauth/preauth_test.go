package preauth

import (
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock fires its timers only when the test advances it, on the
// test's goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves the clock on by d and runs the timers that are due, in
// the order they are due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	live := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			live = append(live, t)
		}
	}
	c.timers = live
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// pending is the number of timers not yet fired or stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// fakeConn is a connection from a given address that records its Close.
type fakeConn struct {
	net.Conn // nil: only what the gate calls is implemented
	remote   net.Addr
	mu       sync.Mutex
	closed   bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }

func (c *fakeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *fakeConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// step is one action on a gate, or one check of what it did; conns are
// numbered in the order they were offered to Admit, from 0.
type step struct {
	op      string        // admit, active, done, advance, closed
	ip      string        // admit: a connection from this IP...
	refused error         // ...which Admit refuses with this (nil: admits)
	conn    int           // active, done: this conn
	d       time.Duration // advance: move the clock on this much
	closed  map[int]error // closed: exactly these conns are closed by the gate, for this reason
}

func admit(ip string) step             { return step{op: "admit", ip: ip} }
func refuse(ip string, err error) step { return step{op: "admit", ip: ip, refused: err} }
func active(i int) step                { return step{op: "active", conn: i} }
func done(i int) step                  { return step{op: "done", conn: i} }
func advance(d time.Duration) step     { return step{op: "advance", d: d} }
func closed(want map[int]error) step   { return step{op: "closed", closed: want} }

func admitN(n int, ip string) (s []step) {
	for range n {
		s = append(s, admit(ip))
	}
	return s
}

// steps flattens steps and lists of steps.
func steps(groups ...any) (out []step) {
	for _, g := range groups {
		switch g := g.(type) {
		case step:
			out = append(out, g)
		case []step:
			out = append(out, g...)
		}
	}
	return out
}

// TestGate: what a gate evicts, refuses and times out, step by step on a
// fake clock. Each closed step checks which conns the gate has closed,
// and why; each case ends with one, then checks the counters, and that
// Close stops every timer and refuses what comes after.
func TestGate(t *testing.T) {
	const a, b, c = "10.0.0.1", "10.0.0.2", "10.0.0.3"
	small := Config{MaxPending: 4, MaxPerSource: 2, FirstByteTimeout: 3 * time.Second, Timeout: 10 * time.Second}
	cases := []struct {
		name  string
		cfg   Config
		steps []step
		want  Stats
	}{
		{name: "under the caps nothing is evicted", cfg: small,
			steps: steps(admit(a), admit(a), admit(b), admit(c), closed(nil)),
			want:  Stats{Pending: 4, Admitted: 4}},
		{name: "full: the oldest idle connection is evicted, not an older active one", cfg: small,
			steps: steps(admit(a), admit(b), admit(c), admit(c), active(0), active(2), active(3), refuse(c, ErrSourceFull), admit("10.0.0.4"),
				closed(map[int]error{1: ErrEvicted})),
			want: Stats{Pending: 4, Admitted: 5, Evicted: 1, Refused: 1}},
		{name: "full of active connections, one a source: a new one is refused", cfg: small,
			steps: steps(admit(a), admit(b), admit(c), admit("10.0.0.4"), active(0), active(1), active(2), active(3),
				refuse("10.0.0.5", ErrFull), closed(nil)),
			want: Stats{Pending: 4, Admitted: 4, Refused: 1}},
		{name: "full of active connections: a source below its share takes the oldest of the source holding the most", cfg: small,
			steps: steps(admit(a), admit(b), admit(b), admit(c), active(0), active(1), active(2), active(3),
				admit("10.0.0.4"), closed(map[int]error{1: ErrEvictedShare}), active(4), refuse("10.0.0.5", ErrFull), closed(map[int]error{1: ErrEvictedShare})),
			want: Stats{Pending: 4, Admitted: 5, Evicted: 1, Refused: 1}},
		{name: "full of active connections past the first-byte timeout: the oldest is evicted (slowloris)", cfg: small,
			steps: steps(admit(a), active(0), advance(time.Second), admit(b), admit(c), admit("10.0.0.6"), active(1), active(2), active(3),
				advance(2*time.Second), admit("10.0.0.4"), closed(map[int]error{0: ErrEvictedSlow}), active(4),
				refuse("10.0.0.5", ErrFull), advance(time.Second), admit("10.0.0.5"), closed(map[int]error{0: ErrEvictedSlow, 1: ErrEvictedSlow})),
			want: Stats{Pending: 4, Admitted: 6, Evicted: 2, Refused: 1}},
		{name: "a source at its cap of active connections loses its own slow one", cfg: small,
			steps: steps(admit(a), admit(a), active(0), active(1), advance(3*time.Second), admit(a), closed(map[int]error{0: ErrEvictedSlow})),
			want:  Stats{Pending: 2, Admitted: 3, Evicted: 1}},
		{name: "a source at its cap loses its own oldest idle connection, not another's", cfg: small,
			steps: steps(admit(b), admit(a), admit(a), admit(a), admit(a), closed(map[int]error{1: ErrEvicted, 2: ErrEvicted})),
			want:  Stats{Pending: 3, Admitted: 5, Evicted: 2}},
		{name: "a source whose connections are all active is refused, with room left", cfg: small,
			steps: steps(admit(a), admit(a), active(0), active(1), refuse(a, ErrSourceFull), admit(b), closed(nil)),
			want:  Stats{Pending: 3, Admitted: 3, Refused: 1}},
		{name: "a silent connection is closed at the first-byte timeout", cfg: small,
			steps: steps(admit(a), advance(time.Second), admit(a), advance(2*time.Second), closed(map[int]error{0: ErrFirstByteTimeout}),
				advance(time.Second), closed(map[int]error{0: ErrFirstByteTimeout, 1: ErrFirstByteTimeout})),
			want: Stats{Admitted: 2, FirstByteTimeouts: 2}},
		{name: "an active connection outlives the first-byte timeout, not the handshake timeout from its admission", cfg: small,
			steps: steps(admit(a), advance(time.Second), active(0), advance(8*time.Second), closed(nil),
				advance(time.Second), closed(map[int]error{0: ErrTimeout})),
			want: Stats{Admitted: 1, Timeouts: 1}},
		{name: "active past the handshake timeout already: closed at once", cfg: Config{FirstByteTimeout: time.Minute, Timeout: time.Second},
			steps: steps(admit(a), advance(2*time.Second), active(0), advance(0), closed(map[int]error{0: ErrTimeout})),
			want:  Stats{Admitted: 1, Timeouts: 1}},
		{name: "done frees the slot and stops the timers", cfg: small,
			steps: steps(admit(a), admit(a), active(1), done(0), done(1), done(1), admit(a), advance(time.Minute),
				closed(map[int]error{2: ErrFirstByteTimeout})),
			want: Stats{Admitted: 3, FirstByteTimeouts: 1}},
		{name: "a full gate of silent connections always takes a new one", cfg: Config{MaxPending: 8, MaxPerSource: 8, FirstByteTimeout: time.Hour},
			steps: steps(admitN(20, a), closed(map[int]error{0: ErrEvicted, 1: ErrEvicted, 2: ErrEvicted, 3: ErrEvicted, 4: ErrEvicted,
				5: ErrEvicted, 6: ErrEvicted, 7: ErrEvicted, 8: ErrEvicted, 9: ErrEvicted, 10: ErrEvicted, 11: ErrEvicted})),
			want: Stats{Pending: 8, Admitted: 20, Evicted: 12}},
		{name: "default per source: 32", cfg: Config{},
			steps: steps(admitN(32, a), admit(a), closed(map[int]error{0: ErrEvicted})),
			want:  Stats{Pending: 32, Admitted: 33, Evicted: 1}},
		{name: "default in all: 256", cfg: Config{},
			steps: steps(admitN(32, "10.1.0.1"), admitN(32, "10.1.0.2"), admitN(32, "10.1.0.3"), admitN(32, "10.1.0.4"),
				admitN(32, "10.1.0.5"), admitN(32, "10.1.0.6"), admitN(32, "10.1.0.7"), admitN(32, "10.1.0.8"),
				admit("10.1.0.9"), closed(map[int]error{0: ErrEvicted})),
			want: Stats{Pending: 256, Admitted: 257, Evicted: 1}},
		{name: "an IPv6 /64 is one source", cfg: small,
			steps: steps(admit("2001:db8::1"), admit("2001:db8::2"), admit("2001:db8::3"), admit("2001:db8:0:1::1"),
				closed(map[int]error{0: ErrEvicted})),
			want: Stats{Pending: 3, Admitted: 4, Evicted: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			g := newGate(tc.cfg, clk)
			var conns []*fakeConn
			var entries []*Entry
			for i, s := range tc.steps {
				switch s.op {
				case "admit":
					c := &fakeConn{remote: &net.TCPAddr{IP: net.ParseIP(s.ip), Port: 1000 + len(conns)}}
					e, err := g.Admit(c)
					if s.refused != nil {
						if !errors.Is(err, s.refused) || e != nil {
							t.Fatalf("step %d: Admit = %v, %v; want refused with %v", i, e, err, s.refused)
						}
					} else if err != nil {
						t.Fatalf("step %d: Admit: %v", i, err)
					}
					conns, entries = append(conns, c), append(entries, e)
				case "active":
					entries[s.conn].Active()
				case "done":
					entries[s.conn].Done()
				case "advance":
					clk.advance(s.d)
				case "closed":
					checkClosed(t, i, conns, entries, s.closed)
				}
			}
			if last := tc.steps[len(tc.steps)-1]; last.op != "closed" {
				t.Fatal("a case ends with a closed step")
			}
			if got := g.Stats(); got != tc.want {
				t.Fatalf("stats %+v, want %+v", got, tc.want)
			}
			if got := len(g.bySource); got > g.Stats().Pending {
				t.Fatalf("%d sources counted for %d pending", got, g.Stats().Pending)
			}
			g.Close()
			if n := clk.pending(); n != 0 {
				t.Fatalf("%d timers left after Close", n)
			}
			if _, err := g.Admit(&fakeConn{remote: &net.TCPAddr{IP: net.ParseIP(a)}}); !errors.Is(err, ErrClosed) {
				t.Fatalf("Admit after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// checkClosed fails unless exactly the conns of want were closed, each
// with the reason its entry gives.
func checkClosed(t *testing.T, at int, conns []*fakeConn, entries []*Entry, want map[int]error) {
	t.Helper()
	for i, c := range conns {
		wantErr, wantClosed := want[i]
		if c.isClosed() != wantClosed {
			t.Fatalf("after step %d: conn %d closed=%v, want %v", at, i, c.isClosed(), wantClosed)
		}
		e := entries[i]
		if e == nil { // refused: its caller closes it
			continue
		}
		if got := e.Err(); wantErr == nil && got != nil || !errors.Is(got, wantErr) {
			t.Fatalf("after step %d: conn %d closed for %v, want %v", at, i, got, wantErr)
		}
	}
}

// TestConnMarksActive: the first Read that returns bytes makes the entry
// active, so that a full gate evicts others rather than it; a Read that
// returns nothing does not.
func TestConnMarksActive(t *testing.T) {
	clk := newFakeClock()
	g := newGate(Config{MaxPending: 2, MaxPerSource: 2}, clk)
	near, far := net.Pipe()
	t.Cleanup(func() { near.Close(); far.Close() })
	e, err := g.Admit(near)
	if err != nil {
		t.Fatal(err)
	}
	other := &fakeConn{remote: &net.TCPAddr{IP: net.ParseIP("10.0.0.9")}}
	if _, err := g.Admit(other); err != nil {
		t.Fatal(err)
	}
	c := e.Conn()
	go far.Write([]byte("x"))
	buf := make([]byte, 1)
	if n, err := c.Read(buf); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	// Full: the next connection must evict the other one, not ours.
	if _, err := g.Admit(&fakeConn{remote: &net.TCPAddr{IP: net.ParseIP("10.0.0.8")}}); err != nil {
		t.Fatal(err)
	}
	if !other.isClosed() || e.Err() != nil {
		t.Fatalf("evicted: other=%v ours=%v; want the idle other one", other.isClosed(), e.Err())
	}
}

// TestSource: the keys connections are counted under.
func TestSource(t *testing.T) {
	cases := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 2}, "127.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 9}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"}, "fe80::/64"},
		{&net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, "unix"},
		{nil, "unknown"},
	}
	for _, tc := range cases {
		if got := Source(tc.addr); got != tc.want {
			t.Errorf("Source(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
