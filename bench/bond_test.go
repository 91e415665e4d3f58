package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sockmux/sockmux/bench/netem"
	"github.com/sockmux/sockmux/internal/testkit"
)

// The bonding cases: two paths that really differ, each a source
// address of a netem.Net (its figures a round trip, as ping shows it).
var bondPairs = []struct {
	name       string
	fast, slow netem.Path
}{
	{"20MBps-5ms+5MBps-20ms",
		netem.Path{Rate: 20 * netem.MB, Delay: 2500 * time.Microsecond},
		netem.Path{Rate: 5 * netem.MB, Delay: 10 * time.Millisecond}},
	{"100Mbit-10ms+20Mbit-60ms",
		netem.Path{Rate: 100 * netem.Mbit, Delay: 5 * time.Millisecond},
		netem.Path{Rate: 20 * netem.Mbit, Delay: 30 * time.Millisecond}},
}

// Paths of a bonding Net: the fast one is 0, the slow one 1.
var (
	fastPath = []int{0}
	slowPath = []int{1}
	bothPath = []int{0, 1}
)

const (
	bondWarm = 2 * time.Second
	bondRun  = 4 * time.Second
)

// bondRounds is how many interleaved rounds a bonding benchmark runs (3,
// or SOCKMUX_BOND_ROUNDS); it reports medians.
func bondRounds() int {
	if n, err := strconv.Atoi(os.Getenv("SOCKMUX_BOND_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// newBondNet makes the namespace of a pair for the benchmark, or skips it
// where the host cannot (not root, no tun, no ip).
func newBondNet(b *testing.B, fast, slow netem.Path) *netem.Net {
	b.Helper()
	testkit.NeedTool(b, "ip")
	n, err := netem.New(fast, slow)
	if errors.Is(err, netem.ErrUnavailable) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

// BenchmarkBondThroughput is the bonding throughput benchmark:
// for each pair, one stream through a link of one carrier on the fast
// path alone, on the slow path alone, and of two carriers bound one to
// each (as connect --bind-carrier does), and one plain TCP stream (no
// tunnel) across each path, the physical limit; in rounds, the order
// rotating, each 2 s of warm-up then 4 s measured at the receiver. It
// reports the medians: MB/s of each, x-sum (bonded ÷ fast alone + slow
// alone, the same round; target ≥ 0.9), x-tcp (bonded ÷ the two plain
// TCP streams), x-cap (bonded ÷ the two paths' nominal rates, which
// count IP and TCP headers) and x-fast (bonded ÷ fast alone). Run it with
//
//	go test -run '^$' -bench BondThroughput -benchtime 1x ./bench/
func BenchmarkBondThroughput(b *testing.B) {
	for _, pair := range bondPairs {
		b.Run(pair.name, func(b *testing.B) {
			n := newBondNet(b, pair.fast, pair.slow)
			BondTrace = b.Logf
			defer func() { BondTrace = nil }()
			cases := []struct {
				name    string
				measure func() (float64, error)
			}{
				{"fast", func() (float64, error) { return MeasureBond(n, fastPath, bondWarm, bondRun) }},
				{"slow", func() (float64, error) { return MeasureBond(n, slowPath, bondWarm, bondRun) }},
				{"bonded", func() (float64, error) { return MeasureBond(n, bothPath, bondWarm, bondRun) }},
				{"tcp-fast", func() (float64, error) { return MeasureBondTCP(n, 0, bondWarm, bondRun) }},
				{"tcp-slow", func() (float64, error) { return MeasureBondTCP(n, 1, bondWarm, bondRun) }},
			}
			got := make([][]float64, len(cases))
			var sum, tcp, fast []float64
			for r := range bondRounds() {
				mbps := make([]float64, len(cases))
				for k := range cases {
					i := (k + r) % len(cases)
					v, err := cases[i].measure()
					if err != nil {
						b.Fatalf("round %d, %s: %v", r, cases[i].name, err)
					}
					mbps[i] = v
					got[i] = append(got[i], v)
				}
				b.Logf("round %d (MB/s): fast %.2f, slow %.2f, bonded %.2f; tcp fast %.2f, slow %.2f", r, mbps[0], mbps[1], mbps[2], mbps[3], mbps[4])
				sum = append(sum, mbps[2]/(mbps[0]+mbps[1]))
				tcp = append(tcp, mbps[2]/(mbps[3]+mbps[4]))
				fast = append(fast, mbps[2]/mbps[0])
			}
			for i, c := range cases {
				b.ReportMetric(medianValue(got[i]), c.name+"-MB/s")
			}
			b.ReportMetric(medianValue(sum), "x-sum")
			b.ReportMetric(medianValue(tcp), "x-tcp")
			b.ReportMetric(medianValue(got[2])*MB/float64(pair.fast.Rate+pair.slow.Rate), "x-cap")
			b.ReportMetric(medianValue(fast), "x-fast")
		})
	}
}

// BenchmarkBondLatency is the small-frames benchmark: 64-byte
// requests, one at a time, through the bonded link of each pair while one
// stream pushes bulk through it, against the same requests on that link
// idle and on the fast path alone, beside bulk and idle (the floor: what
// a round trip through two nodes costs on this machine); each 2 s of
// warm-up, then 4 s of requests, in rounds. It reports the medians of each
// p50 (and the bonded p90) as x-rtt (÷ the fast path's nominal round
// trip), the fast path's round trip as a plain TCP echo across it
// measures it in each round (x-rtt-path, the same unit), x-path-bulk (the
// bonded p50 beside bulk ÷ that measured round trip, same round; target
// ≤ 1.5), and the bulk stream's MB/s.
// Run it with
//
//	go test -run '^$' -bench BondLatency -benchtime 1x ./bench/
func BenchmarkBondLatency(b *testing.B) {
	for _, pair := range bondPairs {
		b.Run(pair.name, func(b *testing.B) {
			n := newBondNet(b, pair.fast, pair.slow)
			BondTrace = b.Logf
			defer func() { BondTrace = nil }()
			rtt := pair.fast.RTT()
			cases := []struct {
				name  string
				paths []int
				bulk  bool
			}{{"idle", bothPath, false}, {"bulk", bothPath, true}, {"fast-alone-bulk", fastPath, true}, {"fast-alone-idle", fastPath, false}}
			p50 := make([][]float64, len(cases))
			var p90, bulk, path []float64
			for r := range bondRounds() {
				// The fast path's own round trip, as a plain TCP echo
				// across it sees it (the emulator's cost included),
				// each round: the target read against the path
				// as it is here, not its nominal figure alone.
				pr, err := MeasurePathRTT(n, 0, 64, time.Second)
				if err != nil {
					b.Fatalf("round %d, the fast path's round trip: %v", r, err)
				}
				path = append(path, float64(pr)/float64(rtt))
				for k := range cases {
					i := (k + r) % len(cases)
					c := cases[i]
					l, err := MeasureBondLatency(n, c.paths, 64, c.bulk, bondWarm, bondRun)
					if err != nil {
						b.Fatalf("round %d, %s: %v", r, c.name, err)
					}
					b.Logf("round %d, %s: p50 %v, p90 %v over %d trips, bulk %.2f MB/s", r, c.name, l.P50, l.P90, l.Trips, l.BulkMBps)
					p50[i] = append(p50[i], float64(l.P50)/float64(rtt))
					if c.name == "bulk" {
						p90 = append(p90, float64(l.P90)/float64(rtt))
						bulk = append(bulk, l.BulkMBps)
					}
				}
			}
			for i, c := range cases {
				b.ReportMetric(medianValue(p50[i]), fmt.Sprintf("x-rtt-%s", c.name))
			}
			b.ReportMetric(medianValue(p90), "x-rtt-p90-bulk")
			// x-path-bulk: the bonded p50 beside bulk ÷ the fast path's
			// round trip as measured in the same round (plain TCP).
			xp := make([]float64, len(path))
			for r := range path {
				xp[r] = p50[1][r] / path[r]
			}
			b.ReportMetric(medianValue(path), "x-rtt-path")
			b.ReportMetric(medianValue(xp), "x-path-bulk")
			b.ReportMetric(medianValue(bulk), "bulk-MB/s")
			b.ReportMetric(float64(rtt)/float64(time.Millisecond), "fast-rtt-ms")
		})
	}
}

// BenchmarkBondCut is the cut-path benchmark: a 96 MB echo,
// checksummed, through the bonded link of the first pair (its nodes
// PINGing every second, so a carrier silent for 3 s is dropped); 1 s in,
// the fast path is cut (a black hole), and restored 2 s after the near
// node dropped its carrier. It fails unless every byte comes back intact
// and the carrier comes back; it reports the medians of the seconds from
// the cut to the carrier dropped (cut-s), from the restore to the carrier
// back (back-s), and the echo's MB/s. Run it with
//
//	go test -run '^$' -bench BondCut -benchtime 1x ./bench/
func BenchmarkBondCut(b *testing.B) {
	pair := bondPairs[0]
	n := newBondNet(b, pair.fast, pair.slow)
	var dropped, back, mbps []float64
	for r := range bondRounds() {
		res, err := MeasureBondCut(n, bothPath, time.Second, 0, 96<<20, time.Second, 2*time.Second, 30*time.Second)
		if err != nil {
			b.Fatalf("round %d: %v", r, err)
		}
		b.Logf("round %d: carrier dropped %v after the cut, back %v after the restore; %v in all, %.2f MB/s", r, res.Dropped, res.Back, res.Total, res.MBps)
		dropped = append(dropped, res.Dropped.Seconds())
		back = append(back, res.Back.Seconds())
		mbps = append(mbps, res.MBps)
	}
	b.ReportMetric(medianValue(dropped), "cut-s")
	b.ReportMetric(medianValue(back), "back-s")
	b.ReportMetric(medianValue(mbps), "echo-MB/s")
}

// TestAcrossPath: the benchmarks' plain-TCP baselines across a netem path
// (no tunnel) carry bytes and echo requests; where netem cannot run
// (not root, no tun) it skips.
func TestAcrossPath(t *testing.T) {
	testkit.NeedTool(t, "ip")
	testkit.CheckLeaks(t)
	n, err := netem.New(netem.Path{Rate: 50 * netem.MB, Delay: time.Millisecond})
	if errors.Is(err, netem.ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	rtt, err := MeasurePathRTT(n, 0, 64, 100*time.Millisecond)
	if err != nil || rtt <= 0 {
		t.Fatalf("the path's round trip: %v, %v", rtt, err)
	}
	mbps, err := MeasureBondTCP(n, 0, 50*time.Millisecond, 100*time.Millisecond)
	if err != nil || mbps <= 0 {
		t.Fatalf("a plain TCP stream across the path: %.2f MB/s, %v", mbps, err)
	}
}
