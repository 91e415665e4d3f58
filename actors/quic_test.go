package actors

import (
	"testing"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestQUICNATRebinding: twice mid-transfer, the UDP relay between the two
// sides moves the dialler's mapping to a new source port, as a NAT that
// rebinds does. The QUIC carrier follows: the listener answers through
// the new port, the checksummed transfer finishes intact, and the link
// never dialled again, resumed, reconnected or lost its carrier.
func TestQUICNATRebinding(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}, Proxy: true, Carrier: "quic"})
	done := make(chan error, 1)
	go func() { done <- echoStreams(t, p.B.ForwardAddrs()[0], 2, 24<<20) }()
	for gen := 1; gen <= 2; gen++ {
		moved := p.A.Stats().BytesIn.Load()
		waitFor(t, "bytes to flow", func() bool { return p.A.Stats().BytesIn.Load() > moved+(4<<20) })
		p.Relay.Rebind()
		waitFor(t, "the listener to answer on the new port", func() bool { return p.Relay.FromTarget(gen) > 64<<10 })
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := p.Dials.Load(); d != 1 {
		t.Fatalf("the dialler dialled %d carriers, want 1: the carrier did not survive the rebinding", d)
	}
	for what, n := range map[string]int64{
		"A resumes": p.A.Stats().resumes.Load(), "B resumes": p.B.Stats().resumes.Load(),
		"A reconnects": p.A.Stats().reconnects.Load(), "B reconnects": p.B.Stats().reconnects.Load(),
	} {
		if n != 0 {
			t.Errorf("%s: %d, want 0", what, n)
		}
	}
	for _, log := range []*testkit.Recorder{p.ALog, p.BLog} {
		for _, r := range log.Records() {
			if r.Msg == "link down" || r.Msg == "carrier lost; the link goes on over the others" {
				t.Fatalf("%s: %v", r.Msg, r.Attrs)
			}
		}
	}
	waitCarriers(t, p, 1)
}
