package bench

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/bench/netem"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestSockmuxOverCarries: sockmux over every carrier kind of the carrier
// benchmark carries a checksummed echo.
func TestSockmuxOverCarries(t *testing.T) {
	for _, kind := range CarrierKinds {
		t.Run(kind, func(t *testing.T) {
			testkit.CheckLeaks(t)
			echo := newEcho(t)
			tun, err := SockmuxOver(kind).New(echo.Addr(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tun.Close()
			c, err := net.Dial("tcp", tun.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := testkit.EchoCheck(c, 3, 4<<20); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// BenchmarkCarrierWS pushes one stream (as Bulk1: 1 MiB an iteration,
// every byte confirmed by the sink) through sockmux over tcp, ws, tls and
// wss carriers, the kinds interleaved within each round
// (SOCKMUX_BENCH_ROUNDS, 5 by default). Each WebSocket kind reports x-tcp
// or x-tls, its throughput ÷ its counterpart's of the same round, and
// cpu-x-tcp or cpu-x-tls, the same for the process's CPU time per byte
// (cpu-s/GB: user and system seconds the whole process, sink and client
// included, spent per 10⁹ bytes carried); the medians of those are printed
// at the end ("CarrierWS: ...").
func BenchmarkCarrierWS(b *testing.B) {
	carrierRounds(b, "CarrierWS", []string{"tcp", "ws", "tls", "wss"}, map[string]string{"ws": "tcp", "wss": "tls"})
}

// BenchmarkCarrierQUIC is BenchmarkCarrierWS for quic:// against tcp://
// on loopback, one stream, interleaved: x-tcp is quic's throughput ÷
// tcp's of the same round (the target: at least 0.7). Run it with
//
//	go test -run '^$' -bench CarrierQUIC$ -benchtime 64x ./bench/
func BenchmarkCarrierQUIC(b *testing.B) {
	carrierRounds(b, "CarrierQUIC", []string{"tcp", "quic"}, map[string]string{"quic": "tcp"})
}

// carrierRounds runs one stream through sockmux over each of kinds, in
// rounds (SOCKMUX_BENCH_ROUNDS, 5 by default), and reports each kind of
// base against the kind it names there, the same round: throughput and
// CPU per byte, and the medians at the end, printed after name.
func carrierRounds(b *testing.B, name string, kinds []string, base map[string]string) {
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("SOCKMUX_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	ratios, cpuRatios := map[string][]float64{}, map[string][]float64{}
	for r := 1; r <= rounds; r++ {
		fig, cpu := map[string]float64{}, map[string]float64{}
		for _, kind := range kinds {
			b.Run(fmt.Sprintf("round=%d/%s", r, kind), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(unit)
				b.StopTimer()
				b.ResetTimer()
				var c0, c1 time.Duration
				p := Probe{
					Start: func() { c0 = processCPU(); b.StartTimer() },
					Stop:  func() { b.StopTimer(); c1 = processCPU() },
				}
				f, err := MeasureBulk(WorkloadBulk(1), SockmuxOver(kind), Options{Streams: 1}, 1,
					Amount{Count: int64(b.N) * unit}, p)
				if err != nil {
					b.Fatal(err)
				}
				// The round's last call stays.
				fig[kind] = f.Value
				cpu[kind] = (c1 - c0).Seconds() / (float64(b.N) * unit / 1e9)
				b.ReportMetric(cpu[kind], "cpu-s/GB")
				if bk, ok := base[kind]; ok && fig[bk] > 0 {
					b.ReportMetric(f.Value/fig[bk], "x-"+bk)
					b.ReportMetric(cpu[kind]/cpu[bk], "cpu-x-"+bk)
				}
			})
		}
		for kind, bk := range base {
			if fig[kind] > 0 && fig[bk] > 0 {
				ratios[kind] = append(ratios[kind], fig[kind]/fig[bk])
				cpuRatios[kind] = append(cpuRatios[kind], cpu[kind]/cpu[bk])
			}
		}
	}
	var sum []string
	for _, kind := range kinds {
		if len(ratios[kind]) == 0 {
			continue
		}
		sum = append(sum, fmt.Sprintf("%s ÷ %s: throughput %s; CPU per byte %s", kind, base[kind],
			medianOf(ratios[kind]), medianOf(cpuRatios[kind])))
	}
	if len(sum) > 0 { // b.Log of a benchmark with sub-benchmarks is not printed
		fmt.Printf("%s: %s\n", name, strings.Join(sum, "; "))
	}
}

// lossyPath is the lossy path: a 50 ms round trip, 1% of the
// packets lost each way, no rate limit but the emulator's own.
var lossyPath = netem.Path{Delay: 25 * time.Millisecond, Loss: 0.01}

// BenchmarkCarrierQUICLossy pushes one stream through a sockmux link of
// one tcp:// carrier and of one quic:// carrier across lossyPath of a
// netem.Net, in rounds (SOCKMUX_BOND_ROUNDS, 3 by default) whose order
// alternates, each 2 s of warm-up then 4 s measured at the receiver, and
// reports the medians: MB/s of each and x-tcp, quic ÷ tcp of the same
// round (the target: at least 1.0). It skips where netem cannot
// run (not root, no tun, no ip). Run it with
//
//	go test -run '^$' -bench CarrierQUICLossy -benchtime 1x ./bench/
func BenchmarkCarrierQUICLossy(b *testing.B) {
	testkit.NeedTool(b, "ip")
	n, err := netem.New(lossyPath)
	if errors.Is(err, netem.ErrUnavailable) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	algo := TCPCongestion()
	kinds := []string{"tcp", "tcp-cubic", "quic"}
	got := map[string][]float64{}
	var ratio, ratioCubic []float64
	for r := range bondRounds() {
		fig := map[string]float64{}
		for k := range kinds {
			kind := kinds[(k+r)%len(kinds)]
			v, err := MeasureCarrierPath(n, 0, kind, bondWarm, bondRun)
			if err != nil {
				b.Fatalf("round %d, %s: %v", r, kind, err)
			}
			fig[kind] = v
			got[kind] = append(got[kind], v)
		}
		b.Logf("round %d (MB/s): tcp (%s) %.3f, tcp (cubic) %.3f, quic %.3f", r, algo, fig["tcp"], fig["tcp-cubic"], fig["quic"])
		ratio = append(ratio, fig["quic"]/fig["tcp"])
		ratioCubic = append(ratioCubic, fig["quic"]/fig["tcp-cubic"])
	}
	for _, kind := range kinds {
		b.ReportMetric(medianValue(got[kind]), kind+"-MB/s")
	}
	b.ReportMetric(medianValue(ratio), "x-tcp")
	b.ReportMetric(medianValue(ratioCubic), "x-tcp-cubic")
	fmt.Printf("CarrierQUICLossy: quic ÷ tcp (the host's %s): throughput %s\n", algo, medianOf(ratio))
	fmt.Printf("CarrierQUICLossy: quic ÷ tcp (cubic): throughput %s\n", medianOf(ratioCubic))
}

// medianOf says "median M (rounds a, b, ...)".
func medianOf(rs []float64) string {
	sorted := slices.Sorted(slices.Values(rs))
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	var each []string
	for _, r := range rs {
		each = append(each, fmt.Sprintf("%.2f", r))
	}
	return fmt.Sprintf("median %.2f (rounds %s)", med, strings.Join(each, ", "))
}
