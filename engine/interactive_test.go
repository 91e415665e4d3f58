package engine

import (
	"testing"
	"time"
)

// TestProbeAt: an interactive link's caps probe in the first ProbeFor of
// every ProbeEvery of the clock, before 1970 too, and not otherwise.
func TestProbeAt(t *testing.T) {
	epoch := time.Unix(0, 0)
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {ProbeFor - 1, true}, {ProbeFor, false}, {ProbeEvery - 1, false},
		{ProbeEvery, true}, {7*ProbeEvery + ProbeFor/2, true}, {7*ProbeEvery + ProbeFor, false},
		{-ProbeEvery + ProbeFor/2, true}, {-ProbeFor / 2, false},
	} {
		if got := probeAt(epoch.Add(tc.at)); got != tc.want {
			t.Errorf("probeAt(epoch%+v) = %v, want %v", tc.at, got, tc.want)
		}
	}
}

// TestInteractiveProbes: a path whose rate was measured at half its
// capacity, on an interactive link, for 2 s of a fluid model of it (what
// it has in flight delivered over the round trip its cap counts, at most
// its capacity; its cap filled every millisecond). With the probes its
// rate reaches the capacity and, outside a probe, its cap is no more than
// what it delivers over that round trip (no standing queue: the gain is
// 1.0); without them (Probing never set) its rate stays where it was, so
// a gain of 1.0 alone would leave the path half used.
func TestInteractiveProbes(t *testing.T) {
	const capacity = 20e6
	run := func(t *testing.T, probe bool) (rate, over float64) {
		epoch := time.Unix(0, 0)
		s := &Stripe{AckDelay: BulkAckDelay, Interactive: true}
		p := withRate(t, s, 1, capacity/2, epoch)
		withRate(t, s, 2, 1e6, epoch) // striped: frames are cut, the least cap is small
		p.RTT = 5 * ms
		pipe := (p.RTT + InteractiveAckDelay + capSlack).Seconds()
		now := epoch.Add(sampleEvery)
		for range 2000 {
			now = now.Add(ms)
			s.Probing = probe && probeAt(now)
			got := min(capacity*ms.Seconds(), float64(p.InFlight())*ms.Seconds()/pipe)
			if _, err := p.OnAck(p.Acked+uint64(got), now); err != nil {
				t.Fatal(err)
			}
			if c := s.Cap(p); p.InFlight() < c {
				p.OnSend(int(c-p.InFlight()), now)
			}
		}
		s.Probing = false
		return p.Rate(), float64(s.Cap(p)) / (capacity * pipe)
	}
	if rate, over := run(t, true); rate < 0.95*capacity || over > 1.001 {
		t.Errorf("with probes: rate %.3g of %.3g, cap %.3f × what the path holds; want the capacity and at most 1", rate, capacity, over)
	}
	if rate, _ := run(t, false); rate > 0.55*capacity {
		t.Errorf("without probes the rate rose to %.3g: the test no longer shows what they are for", rate)
	}
}

// TestSenderProbing: the Sender probes only while the link is
// interactive, and then only within probeAt's windows.
func TestSenderProbing(t *testing.T) {
	epoch := time.Unix(0, 0)
	s := testSender(t, 1<<20, []uint32{1, 3}, 0, 1)
	send := func(f *Frame, now time.Time) {
		t.Helper()
		s.Push(f)
		g, p := s.Next(now)
		if g == nil {
			t.Fatal("nothing to send")
		}
		p.Queued -= g.WireLen()
		g.Release()
	}
	send(newFrame(TypeData, 1, make([]byte, 16<<10)), epoch.Add(ProbeEvery))
	if s.Stripe.Probing {
		t.Fatal("probing on a link that carried no request")
	}
	send(newFrame(TypeData, 3, make([]byte, 64)), epoch.Add(ProbeEvery+ProbeFor))
	send(newFrame(TypeData, 1, make([]byte, 16<<10)), epoch.Add(2*ProbeEvery+ProbeFor/2))
	if !s.Stripe.Interactive || !s.Stripe.Probing {
		t.Fatalf("interactive %v, probing %v within a probe window after a request; want both", s.Stripe.Interactive, s.Stripe.Probing)
	}
	send(newFrame(TypeData, 1, make([]byte, 16<<10)), epoch.Add(2*ProbeEvery+ProbeFor))
	if !s.Stripe.Interactive || s.Stripe.Probing {
		t.Fatalf("interactive %v, probing %v past the probe window; want interactive alone", s.Stripe.Interactive, s.Stripe.Probing)
	}
}
