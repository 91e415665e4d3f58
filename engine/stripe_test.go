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

func TestPickOnePath(t *testing.T) {
	var s Stripe
	p := s.Add(1, t0)
	p.OnSend(1<<30, t0) // however much it has in flight
	p.RTT = time.Second
	if s.Pick(1000, 100) != p {
		t.Fatal("the one path is not picked")
	}
	p.Queued = 99
	if s.Pick(1000, 100) != p {
		t.Fatal("the one path below high water is not picked")
	}
	p.Queued = 100
	if s.Pick(1000, 100) != nil {
		t.Fatal("the one path at high water is picked")
	}
	p.Queued = 0
	p.Stalled = true
	if s.Pick(1000, 100) != nil {
		t.Fatal("the one path, stalled, is picked")
	}
}

func TestPickUnmeasured(t *testing.T) {
	var s Stripe
	a, b, c := s.Add(1, t0), s.Add(2, t0), s.Add(3, t0)
	const hw = 1 << 20
	if got := pickID(&s, 100, hw); got != 1 {
		t.Fatalf("all empty: picked %d, want the first", got)
	}
	a.OnSend(500, t0)
	b.OnSend(300, t0)
	c.OnSend(400, t0)
	b.RTT = time.Second // not measured: RTT does not count
	if got := pickID(&s, 100, hw); got != 2 {
		t.Fatalf("picked %d, want 2 (fewest bytes in flight)", got)
	}
	b.Stalled = true
	if got := pickID(&s, 100, hw); got != 3 {
		t.Fatalf("2 stalled: picked %d, want 3", got)
	}
	c.Queued = hw
	if got := pickID(&s, 100, hw); got != -1 {
		t.Fatalf("2 stalled, 3 (the best) at high water: picked %d, want none (wait for 3)", got)
	}
	c.Queued, a.Queued = 0, hw+1
	if got := pickID(&s, 100, hw); got != 3 {
		t.Fatalf("1 full but not the best: picked %d, want 3", got)
	}
	a.Queued, c.Queued, b.Stalled = 0, 0, false
	wantErr(t, "OnAck", ack(a, 450, at(1*ms)), nil) // 50 left, still unmeasured
	if got := pickID(&s, 100, hw); got != 1 {
		t.Fatalf("picked %d, want 1 (50 bytes in flight)", got)
	}
}

func TestPickByRate(t *testing.T) {
	const size, hw = 1000, 1 << 30
	tests := []struct {
		name     string
		rates    []float64       // bytes/s; 0: unmeasured
		inFlight []int           // bytes
		rtt      []time.Duration // nil: none
		want     int             // index
	}{
		{"equal, empty", []float64{1e6, 1e6}, []int{0, 0}, nil, 0},
		{"equal, fewer in flight", []float64{1e6, 1e6}, []int{5000, 4000}, nil, 1},
		{"faster wins with equal load", []float64{1e6, 2e6}, []int{5000, 5000}, nil, 1},
		{"faster wins with a bit more load", []float64{1e6, 2e6}, []int{5000, 9000}, nil, 1},
		{"slower wins when the faster is loaded twice over", []float64{1e6, 2e6}, []int{5000, 13000}, nil, 0},
		{"RTT counts half", []float64{1e6, 1e6}, []int{0, 0}, []time.Duration{20 * ms, 10 * ms}, 1},
		{"RTT against load", []float64{1e6, 1e6}, []int{0, 4000}, []time.Duration{10 * ms, 0}, 1},            // 1ms+5ms vs 5ms
		{"RTT against load, other way", []float64{1e6, 1e6}, []int{0, 6000}, []time.Duration{10 * ms, 0}, 0}, // 1+5 vs 7
		{"unmeasured taken as the fastest", []float64{1e6, 0}, []int{3000, 2000}, nil, 1},
		{"unmeasured loses with more load", []float64{1e6, 0}, []int{2000, 3000}, nil, 0},
		{"unmeasured is as fast as the fastest", []float64{1e5, 1e6, 0}, []int{5000, 5000, 4000}, nil, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Stripe
			now := at(sampleEvery)
			for i, r := range tc.rates {
				var p *Path
				if r == 0 {
					p = s.Add(i, now)
				} else {
					p = withRate(t, &s, i, r, t0)
				}
				p.OnSend(tc.inFlight[i], now)
				if tc.rtt != nil {
					p.RTT = tc.rtt[i]
				}
			}
			if got := pickID(&s, size, hw); got != tc.want {
				t.Fatalf("picked %d, want %d", got, tc.want)
			}
		})
	}
}

// TestPickTenthRate: a path at a tenth of the other's rate is picked only
// once the other holds about ten times more in flight, and so gets about
// an eleventh of the bytes.
func TestPickTenthRate(t *testing.T) {
	const size, hw = 1000, 1 << 30
	var s Stripe
	fast := withRate(t, &s, 1, 1e6, t0)
	slow := withRate(t, &s, 2, 1e5, t0)
	now := at(sampleEvery)

	slow.OnSend(9000, now) // slow: (9000+1000)/1e5 = 100 ms
	for _, tc := range []struct {
		fast int
		want int
	}{{0, 1}, {50000, 1}, {98000, 1}, {100000, 2}, {150000, 2}} { // fast: (F+1000)/1e6
		fast.Sent, fast.Acked = uint64(tc.fast), 0
		if got := pickID(&s, size, hw); got != tc.want {
			t.Fatalf("fast holding %d, slow 9000: picked %d, want %d", tc.fast, got, tc.want)
		}
	}

	// Nothing delivered: every frame goes where it would arrive first.
	fast.Sent, fast.Acked, slow.Sent, slow.Acked = 0, 0, 0, 0
	var toFast, toSlow int
	for range 2200 {
		p := s.Pick(size, hw)
		p.OnSend(size, now)
		if p == fast {
			toFast++
		} else {
			toSlow++
		}
	}
	if share := float64(toSlow) / float64(toFast+toSlow); share < 0.085 || share > 0.097 {
		t.Fatalf("slow path got %d of %d frames (%.3f), want about 1/11", toSlow, toFast+toSlow, share)
	}
	if ratio := float64(fast.InFlight()) / float64(slow.InFlight()); ratio < 9 || ratio > 11 {
		t.Fatalf("in flight: fast %d, slow %d (ratio %.2f), want about 10", fast.InFlight(), slow.InFlight(), ratio)
	}
}

// TestPickSkipsStalledAndFull: with rates measured, a stalled path is not
// picked, however good it looks; when the best path is at high water,
// nothing is (the frame waits for it rather than arrive late elsewhere).
func TestPickSkipsStalledAndFull(t *testing.T) {
	const hw = 1 << 16
	var s Stripe
	best := withRate(t, &s, 1, 1e7, t0)
	mid := withRate(t, &s, 2, 1e6, t0)
	worst := withRate(t, &s, 3, 1e5, t0)
	if got := pickID(&s, 100, hw); got != 1 {
		t.Fatalf("picked %d, want 1", got)
	}
	best.Stalled = true
	if got := pickID(&s, 100, hw); got != 2 {
		t.Fatalf("1 stalled: picked %d, want 2", got)
	}
	mid.Queued = hw
	if got := pickID(&s, 100, hw); got != -1 {
		t.Fatalf("1 stalled, 2 (now the best) at high water: picked %d, want none", got)
	}
	worst.Queued = hw
	mid.Queued = 0
	if got := pickID(&s, 100, hw); got != 2 {
		t.Fatalf("1 stalled, 3 full: picked %d, want 2", got)
	}
	worst.Queued, mid.Stalled = 0, true
	if got := pickID(&s, 100, hw); got != 3 {
		t.Fatalf("1 and 2 stalled: picked %d, want 3", got)
	}
	worst.Stalled = true
	if got := pickID(&s, 100, hw); got != -1 {
		t.Fatalf("nothing may take it: picked %d", got)
	}
}

func TestStalls(t *testing.T) {
	type path struct {
		rtt      time.Duration
		sendAt   time.Duration // -1: sends nothing
		progress time.Duration // > 0: half its bytes acked at this time
		stalled  bool          // already stalled
	}
	tests := []struct {
		name  string
		paths []path
		now   time.Duration
		want  []int // indexes newly stalled
	}{
		{"not yet", []path{{sendAt: 0}, {sendAt: -1}}, MinStall, nil},
		{"just past MinStall", []path{{sendAt: 0}, {sendAt: -1}}, MinStall + 1, []int{0}},
		{"the other one", []path{{sendAt: -1}, {sendAt: 0}}, MinStall + 1, []int{1}},
		{"clock starts when it got bytes", []path{{sendAt: 10 * time.Second}, {sendAt: -1}}, 10*time.Second + MinStall, nil},
		{"clock starts when it got bytes, later", []path{{sendAt: 10 * time.Second}, {sendAt: -1}}, 10*time.Second + MinStall + 1, []int{0}},
		{"idle never stalls", []path{{sendAt: -1}, {sendAt: -1}}, time.Hour, nil},
		{"progress resets the clock", []path{{sendAt: 0, progress: 50 * ms}, {sendAt: -1}}, 50*ms + MinStall, nil},
		{"progress resets the clock, later", []path{{sendAt: 0, progress: 50 * ms}, {sendAt: -1}}, 50*ms + MinStall + 1, []int{0}},
		{"slow deliveries raise the stall time", []path{{sendAt: 0, progress: 200 * ms}, {sendAt: -1}}, 200*ms + 3*200*ms, nil},
		{"slow deliveries raise the stall time, later", []path{{sendAt: 0, progress: 200 * ms}, {sendAt: -1}}, 200*ms + 3*200*ms + 1, []int{0}},
		{"4 RTT when larger", []path{{sendAt: 0, rtt: 100 * ms}, {sendAt: -1}}, 400 * ms, nil},
		{"4 RTT when larger, later", []path{{sendAt: 0, rtt: 100 * ms}, {sendAt: -1}}, 400*ms + 1, []int{0}},
		{"MinStall when 4 RTT is smaller", []path{{sendAt: 0, rtt: 50 * ms}, {sendAt: -1}}, MinStall + 1, []int{0}},
		{"MinStall when 4 RTT is smaller, earlier", []path{{sendAt: 0, rtt: 50 * ms}, {sendAt: -1}}, 4*50*ms + 1, nil},
		{"never the only path", []path{{sendAt: 0}}, time.Hour, nil},
		{"never the last healthy path", []path{{sendAt: 0}, {sendAt: 0}}, time.Hour, []int{0}},
		{"never the last healthy path, one already stalled", []path{{sendAt: 0, stalled: true}, {sendAt: 0}}, time.Hour, nil},
		{"two of three", []path{{sendAt: 0}, {sendAt: 0}, {sendAt: -1}}, time.Hour, []int{0, 1}},
		{"two of three, all stuck", []path{{sendAt: 0}, {sendAt: 0}, {sendAt: 0}}, time.Hour, []int{0, 1}},
		{"already stalled is not reported again", []path{{sendAt: 0, stalled: true}, {sendAt: 0}, {sendAt: -1}}, time.Hour, []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Stripe
			for i, pp := range tc.paths {
				p := s.Add(i, t0)
				p.RTT = pp.rtt
				if pp.sendAt >= 0 {
					p.OnSend(1000, at(pp.sendAt))
				}
				if pp.progress > 0 {
					wantErr(t, "OnAck", ack(p, 500, at(pp.progress)), nil)
				}
				p.Stalled = pp.stalled
			}
			sentinel := &Path{ID: -7}
			got := s.Stalls([]*Path{sentinel}, at(tc.now))
			if got[0] != sentinel {
				t.Fatal("Stalls did not append to dst")
			}
			var want []int
			for _, i := range tc.want {
				want = append(want, i)
			}
			if !slices.Equal(ids(got[1:]), want) {
				t.Fatalf("Stalls = %v, want %v", ids(got[1:]), want)
			}
			healthy := 0
			for i, p := range s.Paths {
				if p.Stalled != (tc.paths[i].stalled || slices.Contains(tc.want, i)) {
					t.Fatalf("path %d: Stalled %v", i, p.Stalled)
				}
				if !p.Stalled {
					healthy++
				}
			}
			if healthy == 0 {
				t.Fatal("every path stalled")
			}
			// Asking again changes nothing.
			if again := s.Stalls(nil, at(tc.now)); len(again) != 0 {
				t.Fatalf("Stalls again = %v", ids(again))
			}
		})
	}
}

// TestStallAndResume: a path that stops delivering is stalled, gets
// nothing, and is taken back when it delivers again.
func TestStallAndResume(t *testing.T) {
	const size, hw = 1000, 1 << 30
	var s Stripe
	a := withRate(t, &s, 1, 1e6, t0)
	b := withRate(t, &s, 2, 1e6, t0)
	start := sampleEvery
	base := a.Acked
	a.OnSend(10000, at(start))
	b.OnSend(20000, at(start))
	wantErr(t, "OnAck", ack(b, b.Sent, at(start+100*ms)), nil) // b delivers, a does not

	if st := s.Stalls(nil, at(start+MinStall)); len(st) != 0 {
		t.Fatalf("stalled %v before MinStall", ids(st))
	}
	st := s.Stalls(nil, at(start+MinStall+ms))
	if !slices.Equal(ids(st), []int{1}) || !a.Stalled || b.Stalled {
		t.Fatalf("Stalls = %v, want [1]", ids(st))
	}
	b.OnSend(1<<20, at(start+MinStall+ms)) // b now holds far more in flight: a still gets nothing
	if got := pickID(&s, size, hw); got != 2 {
		t.Fatalf("picked %d with 1 stalled", got)
	}

	// An old count is not delivery.
	resumed, err := a.OnAck(base, at(start+time.Second))
	wantErr(t, "old OnAck", err, nil)
	if resumed || !a.Stalled {
		t.Fatalf("an old count resumed the path (resumed %v, stalled %v)", resumed, a.Stalled)
	}
	// A count past what it was given is an error, and no resumption.
	_, err = a.OnAck(a.Sent+1, at(start+time.Second))
	wantErr(t, "OnAck past Sent", err, ErrMalformed)
	if !a.Stalled {
		t.Fatal("a refused count resumed the path")
	}
	// It delivers again.
	resumed, err = a.OnAck(base+4000, at(start+time.Second))
	wantErr(t, "OnAck", err, nil)
	if !resumed || a.Stalled {
		t.Fatalf("delivery after a stall: resumed %v, stalled %v", resumed, a.Stalled)
	}
	b.Stalled = true // only a may take it now
	if got := pickID(&s, size, hw); got != 1 {
		t.Fatalf("picked %d after 1 resumed, want 1", got)
	}
	b.Stalled = false
	// Further deliveries are not resumptions.
	resumed, err = a.OnAck(base+6000, at(start+time.Second+ms))
	wantErr(t, "OnAck", err, nil)
	if resumed {
		t.Fatal("a second delivery reported as a resumption")
	}
	// Its stall clock restarted at the delivery.
	wantErr(t, "OnAck", ack(b, b.Sent, at(start+time.Second+ms)), nil)
	if st := s.Stalls(nil, at(start+time.Second+ms+MinStall)); len(st) != 0 {
		t.Fatalf("stalled %v right after delivering", ids(st))
	}
	if st := s.Stalls(nil, at(start+time.Second+2*ms+MinStall)); !slices.Equal(ids(st), []int{1}) {
		t.Fatalf("Stalls = %v a stall time after its last delivery, want [1]", ids(st))
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
