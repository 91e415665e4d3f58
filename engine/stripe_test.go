package engine

import (
	"math"
	"slices"
	"testing"
	"time"
)

// t0 is the synthetic clock's start; at(d) is t0+d.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const ms = time.Millisecond

// withRate adds path id to s at now and gives it one rate sample of rate
// bytes per second, measured over exactly sampleEvery; it returns the path
// with nothing in flight at now+sampleEvery.
func withRate(tb testing.TB, s *Stripe, id int, rate float64, now time.Time) *Path {
	tb.Helper()
	p := s.Add(id, now)
	n := uint64(rate * sampleEvery.Seconds())
	p.OnSend(int(n), now)
	if _, err := p.OnAck(n, now.Add(sampleEvery)); err != nil {
		tb.Fatal(err)
	}
	if !near(p.Rate(), rate) || p.InFlight() != 0 {
		tb.Fatalf("path %d: rate %v in flight %d, want %v and 0", id, p.Rate(), p.InFlight(), rate)
	}
	return p
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

func ids(ps []*Path) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func pickID(s *Stripe, size, highWater int) int {
	if p := s.Pick(size, highWater); p != nil {
		return p.ID
	}
	return -1
}

func TestStripeAddFindRemove(t *testing.T) {
	var s Stripe
	if s.Find(1) != nil || s.Pick(100, 1<<20) != nil {
		t.Fatal("an empty Stripe finds or picks a path")
	}
	a, b, c := s.Add(1, t0), s.Add(2, t0), s.Add(3, t0)
	if a.ID != 1 || b.ID != 2 || c.ID != 3 || !slices.Equal(ids(s.Paths), []int{1, 2, 3}) {
		t.Fatalf("paths %v", ids(s.Paths))
	}
	if s.Find(2) != b || s.Find(4) != nil {
		t.Fatal("Find")
	}
	if a.Sent != 0 || a.Acked != 0 || a.Rate() != 0 || a.Stalled || a.RTT != 0 {
		t.Fatalf("a new path is not empty: %+v", a)
	}
	s.Remove(2)
	if s.Find(2) != nil || !slices.Equal(ids(s.Paths), []int{1, 3}) {
		t.Fatalf("after Remove(2): %v", ids(s.Paths))
	}
	s.Remove(9) // unknown: nothing happens
	s.Remove(1)
	s.Remove(3)
	if len(s.Paths) != 0 {
		t.Fatalf("after removing all: %v", ids(s.Paths))
	}
}

func TestPathSendAck(t *testing.T) {
	var s Stripe
	p := s.Add(7, t0)
	p.OnSend(100, at(1*ms))
	p.OnSend(50, at(2*ms))
	if p.Sent != 150 || p.InFlight() != 150 {
		t.Fatalf("sent %d in flight %d, want 150", p.Sent, p.InFlight())
	}
	resumed, err := p.OnAck(120, at(3*ms))
	wantErr(t, "OnAck", err, nil)
	if resumed || p.Acked != 120 || p.InFlight() != 30 {
		t.Fatalf("resumed %v acked %d in flight %d", resumed, p.Acked, p.InFlight())
	}
	// Old counts are ignored.
	for _, old := range []uint64{0, 100, 120} {
		resumed, err := p.OnAck(old, at(4*ms))
		wantErr(t, "old OnAck", err, nil)
		if resumed || p.Acked != 120 {
			t.Fatalf("old OnAck(%d): resumed %v acked %d", old, resumed, p.Acked)
		}
	}
	// A count past what was sent is a protocol error and changes nothing.
	for _, bad := range []uint64{151, 1000, math.MaxUint64} {
		resumed, err := p.OnAck(bad, at(5*ms))
		wantErr(t, "OnAck past Sent", err, ErrMalformed)
		wantErr(t, "OnAck past Sent", err, ErrProtocol)
		if resumed || p.Acked != 120 || p.Sent != 150 {
			t.Fatalf("refused OnAck(%d): acked %d sent %d", bad, p.Acked, p.Sent)
		}
	}
	resumed, err = p.OnAck(150, at(6*ms))
	wantErr(t, "OnAck of everything", err, nil)
	if resumed || p.InFlight() != 0 {
		t.Fatalf("in flight %d after acking everything", p.InFlight())
	}
}

func TestPathRate(t *testing.T) {
	var s Stripe
	p := s.Add(1, t0)
	if p.Rate() != 0 {
		t.Fatalf("unmeasured rate %v", p.Rate())
	}
	p.OnSend(1<<30, t0)
	// Less than sampleEvery after the start: no sample yet.
	wantErr(t, "OnAck", ack(p, 1000, at(10*ms)), nil)
	if p.Rate() != 0 {
		t.Fatalf("rate %v from %v of measurement, want none before %v", p.Rate(), 10*ms, sampleEvery)
	}
	// At 40 ms: 40000 bytes in 40 ms.
	wantErr(t, "OnAck", ack(p, 40000, at(40*ms)), nil)
	if !near(p.Rate(), 1e6) {
		t.Fatalf("rate %v, want 1e6", p.Rate())
	}
	// A slower sample does not lower the rate: it is the max.
	wantErr(t, "OnAck", ack(p, 40000+4000, at(80*ms)), nil)
	if !near(p.Rate(), 1e6) {
		t.Fatalf("rate %v after a slower sample, want still 1e6", p.Rate())
	}
	// A faster one raises it; samples over more than sampleEvery count
	// their whole time.
	wantErr(t, "OnAck", ack(p, 44000+300000, at(180*ms)), nil)
	if !near(p.Rate(), 3e6) {
		t.Fatalf("rate %v, want 3e6", p.Rate())
	}
	// Eight slow samples push the fast ones out.
	acked, now := p.Acked, 180*ms
	for i := range rateSamples {
		acked += 2000
		now += sampleEvery
		wantErr(t, "OnAck", ack(p, acked, at(now)), nil)
		if i < rateSamples-1 && !near(p.Rate(), 3e6) {
			t.Fatalf("after %d slow samples: rate %v, want still 3e6", i+1, p.Rate())
		}
	}
	if !near(p.Rate(), 50000) {
		t.Fatalf("after %d slow samples: rate %v, want 50000", rateSamples, p.Rate())
	}
}

func ack(p *Path, bytes uint64, now time.Time) error {
	_, err := p.OnAck(bytes, now)
	return err
}

// TestPathRateAfterIdle: a path that had nothing to send for a while is
// measured from when it got bytes again, not from its last sample.
func TestPathRateAfterIdle(t *testing.T) {
	var s Stripe
	p := s.Add(1, t0)
	p.OnSend(1000, t0)
	wantErr(t, "OnAck", ack(p, 1000, at(5*ms)), nil) // idle from 5 ms
	p.OnSend(100000, at(10*time.Second))
	wantErr(t, "OnAck", ack(p, 1000+80000, at(10*time.Second+40*ms)), nil)
	if !near(p.Rate(), 2e6) {
		t.Fatalf("rate %v after an idle time, want 2e6 (80000 bytes in 40 ms)", p.Rate())
	}
}

func TestAckDelayFor(t *testing.T) {
	for _, tc := range []struct {
		carriers    int
		interactive bool
		want        time.Duration
	}{
		{1, false, BulkAckDelay}, {1, true, BulkAckDelay},
		{2, false, BulkAckDelay}, {2, true, InteractiveAckDelay}, {16, true, InteractiveAckDelay},
	} {
		if got := AckDelayFor(tc.carriers, tc.interactive); got != tc.want {
			t.Errorf("AckDelayFor(%d, %v) = %v, want %v", tc.carriers, tc.interactive, got, tc.want)
		}
	}
	var iv Interactivity
	if iv.Active(t0) {
		t.Error("a side that never saw a request is interactive")
	}
	iv.Frame(1, 100, t0)
	if !iv.Active(t0.Add(InteractiveFor-ms)) || iv.Active(t0.Add(InteractiveFor)) {
		t.Errorf("a request does not make the side interactive for exactly InteractiveFor (%v)", InteractiveFor)
	}
}

func TestPathCap(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64 // bytes/s; 0: unmeasured
		rtt, ack time.Duration
		want     uint64
	}{
		{"unmeasured rate", 0, 10 * ms, 5 * ms, math.MaxUint64},
		{"no round trip yet", 20e6, 0, 5 * ms, math.MaxUint64},
		{"rate × (RTT + ACK delay + slack), with the gain", 20e6, 7 * ms, 5 * ms, uint64(capGain * 20e6 * 0.013)},
		{"a tiny round trip is taken as MinCapTime", 1e9, 100 * time.Microsecond, 0, uint64(capGain * 1e9 * MinCapTime.Seconds())},
		{"never below two of the largest frames", 1e5, 20 * ms, 5 * ms, minCapFrames * (MaxHeaderLen + DefaultMaxPayload)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Stripe{AckDelay: tc.ack} // one path: frames are not cut
			var p *Path
			if tc.rate == 0 {
				p = s.Add(1, t0)
			} else {
				p = withRate(t, &s, 1, tc.rate, t0)
			}
			p.RTT = tc.rtt
			if got := s.Cap(p); got != tc.want {
				t.Fatalf("Cap %d, want %d", got, tc.want)
			}
		})
	}
	// An interactive link's caps: the smaller gain, and the peer's
	// InteractiveAckDelay in place of its AckDelay.
	si := Stripe{AckDelay: 5 * ms}
	p := withRate(t, &si, 1, 20e6, t0)
	p.RTT = 7 * ms
	bulk := si.Cap(p)
	si.Interactive = true
	rate, secs := 20e6, (7*ms + InteractiveAckDelay + capSlack).Seconds()
	if got, want := si.Cap(p), uint64(interactiveGain*rate*secs); got != want || got >= bulk {
		t.Fatalf("interactive Cap %d, want %d (below the bulk cap %d)", got, want, bulk)
	}
	// On a striped link a slow path's frames are cut (Chunk), and its
	// least cap is two of those.
	s := Stripe{AckDelay: 5 * ms}
	slow := withRate(t, &s, 1, 1e5, t0)
	withRate(t, &s, 2, 20e6, t0)
	slow.RTT = 20 * ms
	if got, want := s.Cap(slow), uint64(minCapFrames*(MaxHeaderLen+MinChunk)); got != want {
		t.Fatalf("slow path of a striped link: Cap %d, want %d", got, want)
	}
}

// capPaths is a fast and a slow measured path, as in the bonding
// benchmark's first pair, with their caps.
func capPaths(tb testing.TB) (s *Stripe, fast, slow *Path) {
	s = &Stripe{AckDelay: 5 * ms}
	fast = withRate(tb, s, 1, 20e6, t0)
	slow = withRate(tb, s, 2, 5e6, t0)
	fast.RTT, slow.RTT = 7*ms, 21*ms
	return s, fast, slow
}

// hold gives p n bytes in flight.
func hold(p *Path, n uint64) { p.Sent = p.Acked + n }

// TestPickCap: a large frame goes to a path below its cap, the slow one
// when the fast one holds its cap, to none when both do; a small frame may
// pass a cap by SmallAllowance, and waits for the best path rather than
// take the slow one.
func TestPickCap(t *testing.T) {
	const big, small, hw = 64 << 10, 80, 1 << 30
	s, fast, slow := capPaths(t)
	fc, sc := s.Cap(fast), s.Cap(slow)
	tests := []struct {
		name       string
		fast, slow uint64 // in flight
		size       int
		want       int
	}{
		{"both empty", 0, 0, big, 1},
		{"fast below its cap", fc - 1, 0, big, 1},
		{"fast at its cap: the slow one takes it", fc, 0, big, 2},
		{"both at their caps", fc, sc, big, -1},
		{"a small frame passes the cap", fc, sc, small, 1},
		{"a small frame within the allowance", fc + SmallAllowance - 1, sc, small, 1},
		{"a small frame waits for the best path", fc + SmallAllowance, sc, small, -1},
		{"a small frame to the slow path when it is sooner there", fc + SmallAllowance, 0, small, 2},
		{"a small frame on the best path, below its cap", 0, sc + SmallAllowance, small, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hold(fast, tc.fast)
			hold(slow, tc.slow)
			if got := pickID(s, tc.size, hw); got != tc.want {
				t.Fatalf("fast holding %d (cap %d), slow %d (cap %d): picked %d, want %d", tc.fast, fc, tc.slow, sc, got, tc.want)
			}
		})
	}
}

// TestPickCapOnePath: the one path of a link is not capped (see Cap).
func TestPickCapOnePath(t *testing.T) {
	s := &Stripe{AckDelay: 5 * ms}
	p := withRate(t, s, 1, 20e6, t0)
	p.RTT = 7 * ms
	hold(p, 10*s.Cap(p))
	if s.Pick(64<<10, 1<<30) != p {
		t.Fatal("the one path, far past its cap, does not take a large frame")
	}
}

// TestPickIdleByRTT: on an idle link a request goes to the path with the
// shorter round trip, although the rates measured there (a few requests a
// second) would make the few bytes it still has in flight, waiting for the
// peer's delayed ACK, look slow to drain; a path holding more than that is
// judged by its rate again.
func TestPickIdleByRTT(t *testing.T) {
	const size, hw = 80, 1 << 30
	s := &Stripe{AckDelay: 5 * ms}
	fast := withRate(t, s, 1, 1e4, t0)
	slow := withRate(t, s, 2, 1e4, t0)
	fast.RTT, slow.RTT = 7*ms, 21*ms
	hold(fast, 84) // the last request, not acknowledged yet
	if got := pickID(s, size, hw); got != 1 {
		t.Fatalf("idle: picked %d, want 1 (the shorter round trip)", got)
	}
	hold(slow, 84)
	hold(fast, 0)
	if got := pickID(s, size, hw); got != 1 {
		t.Fatalf("idle, the slow path holding a request: picked %d, want 1", got)
	}
	hold(fast, 8<<10) // not idle: 8 KiB at 10 kB/s is most of a second
	if got := pickID(s, size, hw); got != 2 {
		t.Fatalf("fast path busy: picked %d, want 2", got)
	}
}

func TestChunk(t *testing.T) {
	tests := []struct {
		name  string
		rates []float64 // the paths'; the first is asked about
		want  int
	}{
		{"one path: no cut", []float64{1e6}, 0},
		{"not measured: no cut", []float64{0, 1e6}, 0},
		{"what it sends in chunkTime", []float64{5e6, 20e6}, 10000},
		{"at least MinChunk", []float64{1e6, 20e6}, MinChunk},
		{"fast enough for the largest frames", []float64{1e9, 20e6}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Stripe
			for i, r := range tc.rates {
				if r == 0 {
					s.Add(i, t0)
				} else {
					withRate(t, &s, i, r, t0)
				}
			}
			if got := s.Chunk(s.Paths[0]); got != tc.want {
				t.Fatalf("Chunk %d, want %d", got, tc.want)
			}
		})
	}
}
