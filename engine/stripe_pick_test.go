package engine

import (
	"slices"
	"testing"
	"time"
)

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
