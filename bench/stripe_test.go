package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// The striping case: R per carrier, a few ms of delay (and a
// WAN-ish round trip), four carriers, in the mixed case one of them at
// R/10.
const (
	stripeRate     = 20 * MB
	stripeCarriers = 4
	stripeDelay    = 2500 * time.Microsecond // 5 ms round trip
	stripeWANDelay = 20 * time.Millisecond   // 40 ms round trip
	stripeWarm     = 2 * time.Second
	stripeWANWarm  = 3 * time.Second
)

// stripeCases are the three links of one striping round, the baseline
// (one carrier) first.
func stripeCases(delay time.Duration) []struct {
	name string
	p    StripePath
} {
	return []struct {
		name string
		p    StripePath
	}{
		{"carriers=1", StripePath{Carriers: 1, Delay: delay, Rate: stripeRate}},
		{"carriers=4", StripePath{Carriers: stripeCarriers, Delay: delay, Rate: stripeRate}},
		{"carriers=3+slow", StripePath{Carriers: stripeCarriers, Delay: delay, Rate: stripeRate, SlowRate: stripeRate / 10}},
	}
}

// stripeBench measures one stream near→far ("up") and far→near ("down")
// over one carrier capped at R (the baseline), four at R, and three at R
// with one at R/10, and reports each throughput (MB/s, from SetBytes) as
// x-R (÷ R), x-sum (÷ the sum of the carriers' caps) and x-base (÷ the
// baseline of the same round and direction), with the frames the sender
// resent and the carriers it took for stalled.
func stripeBench(b *testing.B, delay, warm time.Duration) {
	for _, dir := range []string{"up", "down"} {
		base := 0.0
		for _, c := range stripeCases(delay) {
			b.Run(dir+"/"+c.name, func(b *testing.B) {
				b.SetBytes(unit)
				b.StopTimer()
				b.ResetTimer()
				r, err := MeasureStripe(c.p, dir == "down", warm, Amount{Count: int64(b.N) * unit}, Probe{Start: b.StartTimer, Stop: b.StopTimer})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.MBps*MB/float64(c.p.Rate), "x-R")
				b.ReportMetric(r.MBps*MB/float64(c.p.Capacity()), "x-sum")
				if c.p.Carriers == 1 {
					base = r.MBps
				} else if base > 0 {
					b.ReportMetric(r.MBps/base, "x-base")
				}
				b.ReportMetric(float64(r.Resent), "resent")
				b.ReportMetric(float64(r.Stalls), "stalls")
			})
		}
	}
}

// BenchmarkStripe is the striping benchmark: one stream over four
// carriers each capped at R = 20 MB/s across a 5 ms round trip, against
// one carrier, then with one of the four at R/10; each direction, after a
// 2 s warm-up, 1 MiB an iteration at the receiver. Targets: x-R ≥ 3.6
// with four carriers at R, x-sum ≥ 0.9 in the mixed case.
func BenchmarkStripe(b *testing.B) { stripeBench(b, stripeDelay, stripeWarm) }

// BenchmarkStripeWAN is BenchmarkStripe across a 40 ms round trip, after
// a 3 s warm-up.
func BenchmarkStripeWAN(b *testing.B) { stripeBench(b, stripeWANDelay, stripeWANWarm) }

// newStriped builds a striped tunnel to target for the test.
func newStriped(t testing.TB, target string, p StripePath) *Striped {
	t.Helper()
	s, err := NewStriped(target, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// testStripe is a fast version of the mixed case, for the tests.
var testStripe = StripePath{Carriers: 4, Delay: time.Millisecond, Rate: 50 * MB, SlowRate: 5 * MB}

// TestStripedCarries: a stream striped over four emulated carriers, one of
// them slow, arrives intact both ways (an echo, checksummed), and the
// frames of each way went over more than one carrier.
func TestStripedCarries(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := newEcho(t)
	s := newStriped(t, echo.Addr(), testStripe)
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := testkit.EchoCheck(c, 7, 8<<20); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct {
		name string
		st   func() (any, []uint64)
	}{
		{"far (near→far)", func() (any, []uint64) { l, _ := upLink(s.Far()); return l, l.CarrierBytesIn }},
		{"near (far→near)", func() (any, []uint64) { l, _ := upLink(s.Near()); return l, l.CarrierBytesIn }},
	} {
		l, in := n.st()
		if len(in) != 4 {
			t.Fatalf("%s: %d carriers, want 4: %+v", n.name, len(in), l)
		}
		used := 0
		var total uint64
		for _, b := range in {
			if b > 0 {
				used++
			}
			total += b
		}
		if used < 2 || total < 8<<20 {
			t.Errorf("%s: %d bytes over %d carriers (%v), want at least %d over two or more", n.name, total, used, in, 8<<20)
		}
	}
}

// TestMeasureStripe: the striping measurement runs both ways, its stream
// checked by the sink (up) or by Pull (down), and reports a throughput
// and a count for every carrier.
func TestMeasureStripe(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("down=%v", down), func(t *testing.T) {
			testkit.CheckLeaks(t)
			var seen atomic.Int64
			r, err := MeasureStripe(testStripe, down, 0, Amount{Count: 4 << 20}, Probe{Done: &seen})
			if err != nil {
				t.Fatal(err)
			}
			if r.MBps <= 0 || len(r.CarrierBytes) != 4 || !slices.IsSorted(r.CarrierBytes) {
				t.Fatalf("result %+v: want a throughput and 4 carriers' bytes, smallest first", r)
			}
			var total uint64
			for _, b := range r.CarrierBytes {
				total += b
			}
			if total < 4<<20 {
				t.Errorf("carriers received %d bytes in all, want at least the %d measured", total, 4<<20)
			}
		})
	}
}

// TestPullChecks: Pull counts what a Source sends and fails when the
// source's count is wrong or missing, or a frame is lost.
func TestPullChecks(t *testing.T) {
	t.Run("source", func(t *testing.T) {
		testkit.CheckLeaks(t)
		src, err := NewSource()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(src.Close)
		rx := &Sink{}
		stop := make(chan struct{})
		reached := rx.Await(1 << 20)
		errc := make(chan error, 1)
		var n int64
		go func() {
			var err error
			n, err = Pull(src.Addr(), rx, stop)
			errc <- err
		}()
		<-reached
		close(stop)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if n < 1<<20 || n != rx.Received() {
			t.Fatalf("pulled %d bytes, counted %d, want the same and at least %d", n, rx.Received(), 1<<20)
		}
	})
	frame := func(seq uint32, size int) []byte {
		b := make([]byte, frameHeader+size)
		binary.BigEndian.PutUint32(b, uint32(size))
		binary.BigEndian.PutUint32(b[4:], seq)
		binary.BigEndian.PutUint32(b[frameHeader:], seq)
		binary.BigEndian.PutUint32(b[len(b)-4:], seq)
		return b
	}
	count := func(n uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, frameHeader), n) }
	for _, tc := range []struct {
		name string
		sent [][]byte
	}{
		{"wrong count", [][]byte{frame(0, 64), count(60)}},
		{"no count", [][]byte{frame(0, 64), make([]byte, frameHeader)}},
		{"frame lost", [][]byte{frame(0, 64), frame(2, 64), count(128)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := testkit.Serve(t, func(c net.Conn) {
				for _, b := range tc.sent {
					if _, err := c.Write(b); err != nil {
						return
					}
				}
				_, _ = io.Copy(io.Discard, c)
			})
			stop := make(chan struct{})
			close(stop)
			if n, err := Pull(addr, &Sink{}, stop); err == nil {
				t.Fatalf("Pull succeeded with %d bytes", n)
			}
		})
	}
}

// TestSplitDialer: the dialer fills each address's quota in order, sends
// a redial where a carrier was lost, and the first address once all are
// full.
func TestSplitDialer(t *testing.T) {
	d := &SplitDialer{}
	for _, quota := range []int{3, 1} {
		d.Add(testkit.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }), quota)
	}
	var conns []net.Conn
	dial := func() {
		t.Helper()
		c, err := d.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	for range 4 {
		dial()
	}
	if got := d.Live(); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("after 4 dials: live %v, want [3 1]", got)
	}
	conns[3].Close() // the slow one drops
	if got := d.Live(); !slices.Equal(got, []int{3, 0}) {
		t.Fatalf("after closing the last: live %v, want [3 0]", got)
	}
	dial()
	if got := d.Live(); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("after the redial: live %v, want [3 1]", got)
	}
	dial()
	if got := d.Live(); !slices.Equal(got, []int{4, 1}) {
		t.Fatalf("past every quota: live %v, want [4 1]", got)
	}
	if s := d.String(); s == "" {
		t.Error("no name")
	}
}
