package bench

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkClusterHop measures a connection to an edge's -R through the
// hub one hop away (hub to hub over a sockmux link, then the edge's link)
// against through the edge's own hub: one stream's throughput to a Sink,
// a 64-byte round trip on an established stream, and a new connection's
// first response, the two interleaved (their order alternating) in
// SOCKMUX_BENCH_ROUNDS rounds (3 by default). It reports x-own, one hop ÷
// own hub, for throughput (target ≥ 0.8) and the extra milliseconds one
// hop costs a first response beside what it costs an established round
// trip (target: no more than one extra round trip of the hub-to-hub path).
//
//	go test -run '^$' -bench ClusterHop -benchtime 1x ./bench/
func BenchmarkClusterHop(b *testing.B) {
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("SOCKMUX_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	systems := []System{ClusterHubs(false), ClusterHubs(true)}
	bulk, rt, first := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	var xBulk, extraFirst, extraRT []float64
	for r := range rounds {
		fig := map[string][3]float64{}
		for k := range systems {
			sys := systems[(k+r)%len(systems)]
			bf, err := MeasureBulk("bulk", sys, Options{}, 1, Amount{Duration: 3 * time.Second}, Probe{})
			if err != nil {
				b.Fatalf("round %d, %s bulk: %v", r, sys.Name, err)
			}
			rf, err := MeasureRoundTrips("rr", sys, Options{}, 64, Amount{Duration: 2 * time.Second}, Probe{})
			if err != nil {
				b.Fatalf("round %d, %s round trips: %v", r, sys.Name, err)
			}
			ff, err := MeasureFirstResponse("first", sys, Options{}, Amount{Count: 200}, Probe{})
			if err != nil {
				b.Fatalf("round %d, %s first response: %v", r, sys.Name, err)
			}
			fig[sys.Name] = [3]float64{bf.Value, rf.Value, ff.Value}
			bulk[sys.Name] = append(bulk[sys.Name], bf.Value)
			rt[sys.Name] = append(rt[sys.Name], rf.Value)
			first[sys.Name] = append(first[sys.Name], ff.Value)
		}
		own, hop := fig["cluster-own-hub"], fig["cluster-one-hop"]
		b.Logf("round %d: bulk %.0f / %.0f %s, 64-byte round trip %.1f / %.1f µs, first response %.3f / %.3f ms (own hub / one hop)",
			r, own[0], hop[0], "MB/s", own[1], hop[1], own[2], hop[2])
		xBulk = append(xBulk, hop[0]/own[0])
		extraRT = append(extraRT, hop[1]-own[1])
		extraFirst = append(extraFirst, (hop[2]-own[2])*1000)
	}
	for _, s := range systems {
		b.ReportMetric(medianValue(bulk[s.Name]), s.Name+"-MB/s")
		b.ReportMetric(medianValue(first[s.Name]), s.Name+"-first-ms")
	}
	b.ReportMetric(medianValue(xBulk), "x-own-bulk")
	b.ReportMetric(medianValue(extraRT), "hop-rt-extra-µs")
	b.ReportMetric(medianValue(extraFirst), "hop-first-extra-µs")
	fmt.Printf("ClusterHop: one hop ÷ own hub, throughput %s; extra µs per established round trip %s; extra µs per first response %s\n",
		medianOf(xBulk), medianOf(extraRT), medianOf(extraFirst))
}
