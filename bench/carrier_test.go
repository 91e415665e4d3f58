package bench

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// carrierBase is the kind a WebSocket carrier is compared with: the same
// bytes without the WebSocket.
var carrierBase = map[string]string{"ws": "tcp", "wss": "tls"}

// BenchmarkCarrierWS pushes one stream (as Bulk1: 1 MiB an iteration,
// every byte confirmed by the sink) through sockmux over each carrier
// kind, the kinds interleaved within each round (SOCKMUX_BENCH_ROUNDS, 5
// by default): tcp, ws, tls, wss. Each WebSocket kind reports x-tcp or
// x-tls, its throughput ÷ its counterpart's of the same round, and
// cpu-x-tcp or cpu-x-tls, the same for the process's CPU time per byte
// (cpu-s/GB: user and system seconds the whole process, sink and client
// included, spent per 10⁹ bytes carried); the medians of those are printed
// at the end ("CarrierWS: ...").
func BenchmarkCarrierWS(b *testing.B) {
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("SOCKMUX_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	ratios, cpuRatios := map[string][]float64{}, map[string][]float64{}
	for r := 1; r <= rounds; r++ {
		fig, cpu := map[string]float64{}, map[string]float64{}
		for _, kind := range CarrierKinds {
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
				if base, ok := carrierBase[kind]; ok && fig[base] > 0 {
					b.ReportMetric(f.Value/fig[base], "x-"+base)
					b.ReportMetric(cpu[kind]/cpu[base], "cpu-x-"+base)
				}
			})
		}
		for kind, base := range carrierBase {
			if fig[kind] > 0 && fig[base] > 0 {
				ratios[kind] = append(ratios[kind], fig[kind]/fig[base])
				cpuRatios[kind] = append(cpuRatios[kind], cpu[kind]/cpu[base])
			}
		}
	}
	var sum []string
	for _, kind := range []string{"ws", "wss"} {
		if len(ratios[kind]) == 0 {
			continue
		}
		sum = append(sum, fmt.Sprintf("%s ÷ %s: throughput %s; CPU per byte %s", kind, carrierBase[kind],
			medianOf(ratios[kind]), medianOf(cpuRatios[kind])))
	}
	if len(sum) > 0 { // b.Log of a benchmark with sub-benchmarks is not printed
		fmt.Printf("CarrierWS: %s\n", strings.Join(sum, "; "))
	}
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
