package actors

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// upLink returns n's link that is up, if it has one.
func upLink(n *Node) (LinkStatus, bool) {
	for _, l := range n.Status().Links {
		if l.Up {
			return l, true
		}
	}
	return LinkStatus{}, false
}

// waitCarriers waits until both sides' link has n carriers.
func waitCarriers(t testing.TB, p *testPair, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d carriers on both sides", n), func() bool {
		a, okA := upLink(p.A)
		b, okB := upLink(p.B)
		return okA && okB && a.Carriers == n && b.Carriers == n && !a.Resuming && !b.Resuming
	})
}

// echoStreams runs streams checksummed echo round trips of size bytes
// each through addr at once and returns the first error.
func echoStreams(t testing.TB, addr net.Addr, streams, size int) error {
	t.Helper()
	errs := make(chan error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		c := testkit.Dial(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- testkit.EchoCheck(c, uint64(100+i), size)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestStripeTransfer: over 2 and 4 carriers, on both carrier kinds, bytes
// cross intact both ways and every carrier carries some of them.
func TestStripeTransfer(t *testing.T) {
	for _, carrier := range pairCarriers {
		for _, n := range []int{2, 4} {
			t.Run(fmt.Sprintf("%s/%d", carrier, n), func(t *testing.T) {
				echo := testkit.Echo(t)
				p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}, Carrier: carrier, Carriers: n})
				waitCarriers(t, p, n)
				if err := echoStreams(t, p.B.ForwardAddrs()[0], 4, 8<<20); err != nil {
					t.Fatal(err)
				}
				for name, node := range map[string]*Node{"A": p.A, "B": p.B} {
					l, _ := upLink(node)
					if len(l.CarrierBytesIn) != n {
						t.Fatalf("%s: %d carriers report bytes, want %d", name, len(l.CarrierBytesIn), n)
					}
					for i, b := range l.CarrierBytesIn {
						if b == 0 {
							t.Errorf("%s: carrier %d carried nothing of 32 MiB (%v)", name, i, l.CarrierBytesIn)
						}
					}
				}
			})
		}
	}
}

// TestStripeCarrierClosed: one carrier closed mid-transfer, then another;
// what they held is sent again on the others, they are redialled, and the
// streams finish intact.
func TestStripeCarrierClosed(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}, Proxy: true, Carriers: 4,
		Backoff: 10 * time.Millisecond})
	waitCarriers(t, p, 4)
	done := make(chan error, 1)
	go func() { done <- echoStreams(t, p.B.ForwardAddrs()[0], 2, 32<<20) }()
	for n, i := range []int{0, 2} {
		moved := p.A.Stats().BytesIn.Load()
		waitFor(t, "bytes to flow", func() bool { return p.A.Stats().BytesIn.Load() > moved+(2<<20) })
		if !p.Proxy.CutOne(i) {
			t.Fatalf("no carrier %d to cut", i)
		}
		p.BLog.WaitN(t, 10*time.Second, "the carrier lost", n+1, func(r testkit.Record) bool {
			return r.Msg == "carrier lost; the link goes on over the others"
		})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitCarriers(t, p, 4) // redialled
	if p.A.Stats().resumes.Load()+p.B.Stats().resumes.Load() != 0 {
		t.Fatal("the link needed resuming: it should never have lost all its carriers")
	}
	if st := p.A.Stats().reconnects.Load() + p.B.Stats().reconnects.Load(); st != 0 {
		t.Fatalf("%d reconnects: the link itself went down", st)
	}
}

// TestStripeStalledCarrier: a carrier that stops moving bytes is avoided
// and what it holds is sent on the others: the transfer finishes while it
// is still stalled.
func TestStripeStalledCarrier(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}, Proxy: true, Carriers: 3})
	waitCarriers(t, p, 3)
	done := make(chan error, 1)
	go func() { done <- echoStreams(t, p.B.ForwardAddrs()[0], 2, 16<<20) }()
	waitFor(t, "bytes to flow", func() bool { return p.A.Stats().BytesIn.Load() > 1<<20 })
	if !p.Proxy.PauseOne(1) {
		t.Fatal("no carrier to pause")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.A.Stats().carrierStalls.Load()+p.B.Stats().carrierStalls.Load() == 0 {
		t.Fatal("no carrier was taken for stalled")
	}
	p.Proxy.Resume()
}

// TestResume: the only carrier drops mid-transfer and the dialler
// resumes the link: the streams carry on with no byte lost or repeated,
// and the link never went down.
func TestResume(t *testing.T) {
	for _, carrier := range []string{"tcp", "ws", "quic"} {
		t.Run(carrier, func(t *testing.T) {
			echo := testkit.Echo(t)
			cfg := pairConfig{BForwards: []forward.Forward{fwd(t, echo)}, Proxy: true,
				Backoff: 10 * time.Millisecond, Carrier: carrier}
			if carrier == "quic" {
				// A UDP relay's cut is silence, not a closed connection:
				// the keepalive finds the carrier dead.
				cfg.Keepalive = 250 * time.Millisecond
			}
			p := newTestPair(t, cfg)
			done := make(chan error, 1)
			go func() { done <- echoStreams(t, p.B.ForwardAddrs()[0], 3, 16<<20) }()
			for range 2 {
				moved := p.A.Stats().BytesIn.Load()
				waitFor(t, "bytes to flow", func() bool { return p.A.Stats().BytesIn.Load() > moved+(2<<20) })
				if p.Relay != nil {
					p.Relay.Cut()
				} else {
					p.Proxy.Cut()
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if r := p.B.Stats().resumes.Load(); r < 1 {
				t.Fatalf("B resumed %d times, want at least 1", r)
			}
			for _, log := range []*testkit.Recorder{p.ALog, p.BLog} {
				for _, r := range log.Records() {
					if r.Msg == "link down" {
						t.Fatalf("the link went down: %v", r.Attrs)
					}
				}
			}
		})
	}
}

// TestResumeExpired: when the dialler cannot come back within the resume
// window, both sides reset the streams with a reason that says so, and a
// late join is refused as an unknown link, after which a fresh link comes
// up.
func TestResumeExpired(t *testing.T) {
	held := testkit.Serve(t, func(c net.Conn) { _, _ = c.Read(make([]byte, 1)) })
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, held)}, Proxy: true,
		Backoff: 10 * time.Millisecond,
		A:       func(c *Config) { c.ResumeWindow = 100 * time.Millisecond },
		B:       func(c *Config) { c.ResumeWindow = time.Hour }})
	c := testkit.Dial(t, p.B.ForwardAddrs()[0])
	waitFor(t, "the stream to open", func() bool { return p.A.Stats().StreamsOpened.Load() == 1 })
	p.Proxy.Refuse(true)
	p.Proxy.Cut()
	rec := p.ALog.Wait(t, 10*time.Second, "the accepter giving up", func(r testkit.Record) bool { return r.Msg == "link down" })
	if err, _ := rec.Attrs["reason"].(error); !errors.Is(err, errResumeExpired) {
		t.Fatalf("accepter's link down reason %v, want %v", rec.Attrs["reason"], errResumeExpired)
	}
	p.Proxy.Refuse(false)
	rec = p.BLog.Wait(t, 10*time.Second, "the dialler told the link is gone", func(r testkit.Record) bool { return r.Msg == "link down" })
	if err, _ := rec.Attrs["reason"].(error); !errors.Is(err, errResumeExpired) {
		t.Fatalf("dialler's link down reason %v, want %v", rec.Attrs["reason"], errResumeExpired)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read %v, want its connection reset: the stream was cut short", err)
	}
	waitFor(t, "a fresh link", func() bool { _, ok := upLink(p.B); return ok })
}
