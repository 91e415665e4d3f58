package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unit is what one bulk or WAN iteration moves: b.SetBytes(unit).
const unit = 1 << 20

// board collects every figure of the run, for the ratios and the charts.
var board Scoreboard

// TestMain runs the tests and benchmarks, then, when SOCKMUX_BENCH_CHARTS
// names a directory (relative to the repository's root) and benchmarks
// ran, writes there the charts and the table of medians (figures.txt). A
// process started as a helper of the idle workload is that and nothing
// else.
func TestMain(m *testing.M) {
	if RunHelper() {
		return
	}
	code := m.Run()
	if dir := os.Getenv(ChartsEnv); dir != "" && code == 0 && len(board.Figures()) > 0 {
		if err := writeReport(dir); err != nil {
			fmt.Fprintln(os.Stderr, "charts:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func writeReport(dir string) error {
	dir = fromRoot(dir)
	figs := board.Medians()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "figures.txt"))
	if err != nil {
		return err
	}
	if err := WriteTable(f, figs); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ThroughputChart(filepath.Join(dir, ThroughputChartFile), figs); err != nil {
		return err
	}
	return WANWindowChart(filepath.Join(dir, WANWindowChartFile), []System{Yamux, Smux, Sockmux}, DefaultRTT, DefaultRate, 5*time.Second)
}

// fromRoot resolves a relative path against the module's root (go test
// runs in the package's directory), so that SOCKMUX_BENCH_CHARTS=docs/bench
// means the same from anywhere in the repository.
func fromRoot(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return p
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, p)
		}
		if filepath.Dir(d) == d {
			return p
		}
	}
}

// each runs one workload through systems, one sub-benchmark each, in
// order (baselines first), and reports every figure with its ratios to the
// baselines measured before it in the same run.
func each(b *testing.B, systems []System, measure func(b *testing.B, sys System, p Probe) (Figure, error)) {
	for _, sys := range systems {
		b.Run(sys.Name, func(b *testing.B) {
			b.ReportAllocs()
			b.StopTimer()
			b.ResetTimer()
			f, err := measure(b, sys, Probe{Start: b.StartTimer, Stop: b.StopTimer})
			if err != nil {
				b.Fatal(err)
			}
			// A round of a benchmark starts with b.N = 1; the later
			// calls of the round replace its figure, the last one
			// staying.
			if b.N == 1 {
				f = board.Add(f)
			} else {
				f = board.Update(f)
			}
			report(b, f)
		})
	}
}

// report prints a figure as the benchmark's metrics: the headline (unless
// it is the MB/s go test prints from SetBytes), the others, x-relay for
// every system but the relay chain, x-mux for every system but the
// baselines.
func report(b *testing.B, f Figure) {
	if f.Unit != "MB/s" {
		b.ReportMetric(f.Value, f.Unit)
	}
	for _, m := range f.Metrics {
		b.ReportMetric(m.Value, m.Unit)
	}
	switch f.System {
	case Relay.Name, Direct.Name:
	case Yamux.Name, Smux.Name:
		if f.XRelay > 0 {
			b.ReportMetric(f.XRelay, "x-relay")
		}
	default:
		if f.XRelay > 0 {
			b.ReportMetric(f.XRelay, "x-relay")
		}
		if f.XMux > 0 {
			b.ReportMetric(f.XMux, "x-mux")
		}
	}
}

func bulk(b *testing.B, streams int) {
	each(b, Systems, func(b *testing.B, sys System, p Probe) (Figure, error) {
		b.SetBytes(unit)
		return MeasureBulk(WorkloadBulk(streams), sys, Options{Streams: streams}, streams, Amount{Count: int64(b.N) * unit}, p)
	})
}

// BenchmarkBulk1 pushes one stream through each system, 1 MiB an
// iteration, every byte confirmed by the sink.
func BenchmarkBulk1(b *testing.B) { bulk(b, 1) }

// BenchmarkBulk64 pushes 64 streams at once through each system, 1 MiB an
// iteration between them.
func BenchmarkBulk64(b *testing.B) { bulk(b, 64) }

// BenchmarkRoundTrip64 sends 64-byte requests to an echo server one at a
// time on one stream, an iteration a round trip, each answer checked, and
// reports the median and 99th percentile round trip.
func BenchmarkRoundTrip64(b *testing.B) {
	each(b, Systems, func(b *testing.B, sys System, p Probe) (Figure, error) {
		b.SetBytes(RequestSize)
		return MeasureRoundTrips(WorkloadRoundTrip, sys, Options{}, RequestSize, Amount{Count: int64(b.N)}, p)
	})
}

// BenchmarkIdle10k opens 10,000 streams through each system to a server
// that answers one byte on each and holds them, an iteration a fresh pair
// of peers and 10,000 streams, and reports both peers' growth per stream
// (resident, heap, stacks) with them open and idle. Each peer, and the
// server, runs in a process of its own (see Idle). The relay chain is left
// out: its copy buffers alone are 1 MiB a stream.
func BenchmarkIdle10k(b *testing.B) {
	const n = DefaultIdleStreams
	each(b, []System{Yamux, Smux, Sockmux}, func(b *testing.B, sys System, p Probe) (Figure, error) {
		var sum IdleResult
		for range b.N {
			p.start()
			r, err := Idle(sys, n, nil)
			p.stop()
			if err != nil {
				return Figure{}, err
			}
			sum.Streams += r.Streams
			sum.Open += r.Open
			sum.Near = sum.Near.Add(r.Near)
			sum.Far = sum.Far.Add(r.Far)
		}
		sum.Open /= time.Duration(b.N)
		return IdleFigure(WorkloadIdle(n), sys.Name, sum), nil
	})
}

// wanOptions is the emulated WAN: 50 ms round trip, 1 Gbit/s per
// connection.
func wanOptions(streams int) Options {
	o := WANOptions(DefaultRTT, DefaultRate)
	o.Streams = streams
	return o
}

// BenchmarkWAN1 pushes one stream through each system whose carrier (the
// relay chain's middle hop) crosses an emulated 50 ms, 1 Gbit/s path,
// default settings. After a 1 s warm-up on the same stream it measures at
// the receiver, 1 MiB an iteration, and reports the fraction of the link's
// rate (x-link).
func BenchmarkWAN1(b *testing.B) {
	each(b, Systems, func(b *testing.B, sys System, p Probe) (Figure, error) {
		b.SetBytes(unit)
		return MeasureWAN(WorkloadWAN(1), sys, wanOptions(1), 1, DefaultWarm, Amount{Count: int64(b.N) * unit}, p, false)
	})
}

// BenchmarkWAN64 is BenchmarkWAN1 with 64 streams sharing the link, and
// reports the peak growth of the live heap and stacks while they run
// (peak-MiB) and its fraction of sockmux's 64 MiB link budget (x-budget).
// The relay chain is left out: each of its connections would get a path
// of its own.
func BenchmarkWAN64(b *testing.B) {
	each(b, []System{Yamux, Smux, Sockmux}, func(b *testing.B, sys System, p Probe) (Figure, error) {
		b.SetBytes(unit)
		return MeasureWAN(WorkloadWAN(64), sys, wanOptions(64), 64, DefaultWarm, Amount{Count: int64(b.N) * unit}, p, true)
	})
}

// BenchmarkFirstResponse makes a new connection an iteration, through each
// system over the emulated 50 ms path to an echo server, sending a 64-byte
// request at once, and reports the median time to the whole answer and
// its ratio to connecting directly across the same path ("direct", run
// first; x-direct).
func BenchmarkFirstResponse(b *testing.B) {
	each(b, append([]System{Direct}, Systems...), func(b *testing.B, sys System, p Probe) (Figure, error) {
		// No SetBytes: 64 bytes in 50 ms shows as 0.00 MB/s.
		f, err := MeasureFirstResponse(WorkloadFirstResponse, sys, wanOptions(1), Amount{Count: int64(b.N)}, p)
		if err != nil {
			return f, err
		}
		return WithDirect(&board, f), nil
	})
}

// BenchmarkRedis runs redis-benchmark's GET with 1 connection and with 50,
// and a new connection's time to its first answer, against a redis-server
// on loopback: directly, through OpenSSH's ssh -L (an sshd of its own,
// aes128-gcm) and through sockmux's -L (both peers in processes of their
// own), the systems interleaved, SOCKMUX_BENCH_ROUNDS rounds (5 by
// default) in one call: run it with -benchtime 1x. It reports each
// median and sockmux's ratio to ssh (x-ssh), and logs the table. Without
// redis-server, redis-benchmark or OpenSSH it skips.
func BenchmarkRedis(b *testing.B) {
	cfg := DefaultRedisConfig
	if n, err := strconv.Atoi(os.Getenv("SOCKMUX_BENCH_ROUNDS")); err == nil && n > 0 {
		cfg.Rounds = n
	}
	res, err := MeasureRedis([]System{Direct, OpenSSH, Apart(Sockmux)}, cfg)
	if errors.Is(err, ErrMissingTool) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range []string{WorkloadRedisGet1, WorkloadRedisGet50, WorkloadRedisTTFR} {
		unit := "req/s"
		if w == WorkloadRedisTTFR {
			unit = "ms"
		}
		for _, s := range res.Systems {
			b.ReportMetric(res.Median(w, s), s+"-"+strings.TrimPrefix(w, "redis-")+"-"+unit)
		}
		if m := res.Median(w, OpenSSH.Name); m > 0 {
			b.ReportMetric(res.Median(w, Sockmux.Name)/m, "x-ssh-"+strings.TrimPrefix(w, "redis-"))
		}
		if m := res.CPUMedian(w, OpenSSH.Name); m > 0 {
			b.ReportMetric(res.CPUMedian(w, Sockmux.Name)/m, "x-ssh-cpu-"+strings.TrimPrefix(w, "redis-"))
		}
	}
	var t strings.Builder
	if err := WriteRedisTable(&t, res, Sockmux.Name, OpenSSH.Name); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("medians of %d interleaved rounds (each round's figure in brackets):\n%s", cfg.Rounds, t.String())
}

// BenchmarkRedisHops breaks a GET round trip through sockmux (its peers
// apart, to a redis-server) into the time between the stages its bytes
// pass on both peers. It needs a hop-traced build:
// go test -tags hoptrace -run '^$' -bench RedisHops$ -benchtime 1x ./bench/
func BenchmarkRedisHops(b *testing.B) {
	benchHops(b, 20_000, false, "a GET round trip")
}

// BenchmarkRedisHopsFirst is BenchmarkRedisHops for a new connection's
// first GET, from starting to connect to having the answer:
// go test -tags hoptrace -run '^$' -bench RedisHopsFirst -benchtime 1x ./bench/
func BenchmarkRedisHopsFirst(b *testing.B) {
	benchHops(b, 2_000, true, "a new connection's first GET")
}

// benchHops measures n traced GETs (first: each on a new connection) and
// prints the breakdown of what.
func benchHops(b *testing.B, n int, first bool, what string) {
	res, err := MeasureHops(n, first)
	if errors.Is(err, ErrNotHopTraced) || errors.Is(err, ErrMissingTool) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(us(res.RoundTrip), "p50-µs")
	var t strings.Builder
	if err := WriteHops(&t, res); err != nil {
		b.Fatal(err)
	}
	// Printed, not logged: go test cuts a benchmark's log to ten lines.
	fmt.Printf("per-hop breakdown of %s through sockmux:\n%s", what, t.String())
}
