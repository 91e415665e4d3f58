package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// newTunnel builds a tunnel of sys to target for the test.
func newTunnel(t testing.TB, sys System, target string, o Options) Tunnel {
	t.Helper()
	tun, err := sys.New(target, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tun.Close)
	return tun
}

func newSink(t testing.TB) *Sink {
	t.Helper()
	s, err := NewSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newEcho(t testing.TB) *Echo {
	t.Helper()
	e, err := NewEcho()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// paths are the two ways a tunnel's ends can be linked in the tests.
var paths = []struct {
	name string
	o    Options
}{
	{"loopback", Options{}},
	{"emulated", Options{Delay: time.Millisecond, Rate: 200_000_000}},
}

// TestSystemsCarry: every system carries bulk data on several streams,
// round trips and a new connection's first answer, intact, over loopback
// and across an emulated path, and leaves nothing behind.
func TestSystemsCarry(t *testing.T) {
	for _, sys := range append(slices.Clone(Systems), Direct) {
		for _, p := range paths {
			t.Run(sys.Name+"/"+p.name, func(t *testing.T) {
				testkit.CheckLeaks(t)
				sink, echo := newSink(t), newEcho(t)
				if n, err := PushParallel(newTunnel(t, sys, sink.Addr(), p.o).Addr(), 4<<20, 4); err != nil || n != 4<<20 {
					t.Fatalf("pushed %d bytes: %v", n, err)
				}
				tun := newTunnel(t, sys, echo.Addr(), p.o)
				rtts, err := RoundTrips(tun.Addr(), 20, RequestSize, nil, nil)
				if err != nil || len(rtts) != 20 {
					t.Fatalf("%d round trips: %v", len(rtts), err)
				}
				if _, err := FirstResponse(tun.Addr(), RequestSize); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestPushChecks: the bulk workload fails when the sink's count is wrong
// or missing, and the sink refuses frames lost, repeated or cut short.
func TestPushChecks(t *testing.T) {
	frame := func(seq uint32, size int) []byte {
		b := make([]byte, frameHeader+size)
		binary.BigEndian.PutUint32(b, uint32(size))
		binary.BigEndian.PutUint32(b[4:], seq)
		binary.BigEndian.PutUint32(b[frameHeader:], seq)
		binary.BigEndian.PutUint32(b[len(b)-4:], seq)
		return b
	}
	end := make([]byte, frameHeader)
	for _, tc := range []struct {
		name string
		// server: a fake sink for Push, or nil to write raw to a Sink.
		server func(c net.Conn)
		raw    [][]byte
	}{
		{name: "wrong count", server: func(c net.Conn) {
			_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20+frameHeader*9))
			_, _ = c.Write(make([]byte, 8)) // says 0
		}},
		{name: "no count", server: func(c net.Conn) {
			_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20+frameHeader*9))
		}},
		{name: "frame lost", raw: [][]byte{frame(0, 64), frame(2, 64), end}},
		{name: "frame repeated", raw: [][]byte{frame(0, 64), frame(0, 64), end}},
		{name: "payload not its own", raw: [][]byte{frame(0, 64), append(frame(1, 64)[:frameHeader+60], 0, 0, 0, 9), end}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.server != nil {
				if err := Push(testkit.Serve(t, tc.server), 1<<20); err == nil {
					t.Fatal("Push succeeded")
				}
				return
			}
			sink := newSink(t)
			c, err := net.Dial("tcp", sink.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, b := range tc.raw {
				if _, err := c.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := io.ReadFull(c, make([]byte, 8)); err == nil {
				t.Fatalf("the sink answered a bad stream with a count (%d bytes)", n)
			}
			if sink.Failures() != 1 {
				t.Fatalf("sink failures %d, want 1", sink.Failures())
			}
		})
	}
}

// TestRoundTripsCheck: an answer that is not the request is an error.
func TestRoundTripsCheck(t *testing.T) {
	addr := testkit.Serve(t, func(c net.Conn) {
		b := make([]byte, RequestSize)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			b[RequestSize-1]++
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	})
	if _, err := RoundTrips(addr, 3, RequestSize, nil, nil); err == nil {
		t.Fatal("a wrong answer passed")
	}
	if _, err := FirstResponse(addr, RequestSize); err == nil {
		t.Fatal("a wrong first answer passed")
	}
}

// TestMeasures runs each workload's measurement small through every system
// it is meant for, and checks its figure is there.
func TestMeasures(t *testing.T) {
	wan := Options{Delay: 2 * time.Millisecond, Rate: 100_000_000}
	for _, sys := range Systems {
		t.Run(sys.Name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			for _, tc := range []struct {
				name    string
				measure func() (Figure, error)
				metrics []string
			}{
				{"bulk", func() (Figure, error) {
					return MeasureBulk("bulk", sys, Options{}, 2, Amount{Count: 2 << 20}, Probe{})
				}, nil},
				{"bulk for a time", func() (Figure, error) {
					return MeasureBulk("bulk", sys, Options{}, 2, Amount{Duration: 20 * time.Millisecond}, Probe{})
				}, nil},
				{"round trips", func() (Figure, error) {
					return MeasureRoundTrips("rr", sys, Options{}, RequestSize, Amount{Count: 50}, Probe{})
				}, []string{"p99-µs"}},
				{"first response", func() (Figure, error) {
					return MeasureFirstResponse("ttfr", sys, wan, Amount{Count: 3}, Probe{})
				}, []string{"p90-ms"}},
				{"wan", func() (Figure, error) {
					return MeasureWAN("wan", sys, wan, 2, 20*time.Millisecond, Amount{Count: 1 << 20}, Probe{}, true)
				}, []string{"x-link", "peak-MiB", "x-budget"}},
			} {
				f, err := tc.measure()
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if f.Value <= 0 || f.System != sys.Name {
					t.Errorf("%s: figure %+v", tc.name, f)
				}
				for _, m := range tc.metrics {
					if _, ok := f.Metric(m); !ok {
						t.Errorf("%s: no %s in %+v", tc.name, m, f)
					}
				}
			}
		})
	}
}

// TestIdle holds a few streams through each system with peers, each peer
// and the server in a helper process, and gets both peers' memory.
func TestIdle(t *testing.T) {
	for _, sys := range []System{Yamux, Smux, Sockmux} {
		t.Run(sys.Name, func(t *testing.T) {
			r, err := Idle(sys, 20, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Streams != 20 || r.Near.RSS == 0 && r.Far.RSS == 0 && r.Near.Heap == 0 {
				t.Fatalf("result %+v", r)
			}
			f := IdleFigure("idle", sys.Name, r)
			if _, ok := f.Metric("heap-B/stream"); !ok {
				t.Fatalf("figure %+v", f)
			}
		})
	}
	if _, err := Idle(Relay, 1, nil); err == nil {
		t.Fatal("the relay chain held idle streams: it has no peers to measure")
	}
}

// TestSeries samples a stream's throughput in intervals.
func TestSeries(t *testing.T) {
	testkit.CheckLeaks(t)
	s, err := Series(Sockmux, Options{Delay: time.Millisecond, Rate: 50_000_000}, 300*time.Millisecond, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, v := range s {
		total += v
	}
	if len(s) != 3 || total <= 0 { // a loaded machine may start late: some interval carries bytes
		t.Fatalf("series %v", s)
	}
}

// TestScoreboard: ratios come from the latest baselines of the workload,
// the better of yamux and smux by the figure's direction; medians fold
// rounds.
func TestScoreboard(t *testing.T) {
	fig := func(w, sys string, v float64, higher bool) Figure {
		return Figure{Workload: w, System: sys, Value: v, Higher: higher, Unit: "u", Metrics: []Metric{{v * 2, "m"}}}
	}
	for _, tc := range []struct {
		name         string
		figs         []Figure
		xRelay, xMux float64 // of the last figure
	}{
		{"throughput", []Figure{fig("w", "relay", 100, true), fig("w", "yamux", 40, true), fig("w", "smux", 50, true), fig("w", "sockmux", 90, true)}, 0.9, 1.8},
		{"latency", []Figure{fig("w", "relay", 10, false), fig("w", "yamux", 40, false), fig("w", "smux", 20, false), fig("w", "sockmux", 30, false)}, 3, 1.5},
		{"no baselines", []Figure{fig("w", "sockmux", 30, false)}, 0, 0},
		{"other workload's baselines", []Figure{fig("v", "relay", 10, true), fig("w", "sockmux", 30, true)}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sb Scoreboard
			var last Figure
			for _, f := range tc.figs {
				last = sb.Add(f)
			}
			if last.XRelay != tc.xRelay || last.XMux != tc.xMux {
				t.Fatalf("ratios %v, %v; want %v, %v", last.XRelay, last.XMux, tc.xRelay, tc.xMux)
			}
		})
	}
	var sb Scoreboard
	for _, v := range []float64{100, 300, 200} {
		sb.Add(fig("w", "relay", v, true))
	}
	for _, v := range []float64{150, 100, 50, 10} {
		sb.Add(fig("w", "sockmux", v, true))
	}
	m := sb.Medians()
	if len(m) != 2 || m[0].Value != 200 || m[1].Value != 75 || m[1].XRelay != 75.0/200 {
		t.Fatalf("medians %+v", m)
	}
	if v, _ := m[1].Metric("m"); v != 150 {
		t.Fatalf("median metric %v, want 150", v)
	}
	var out bytes.Buffer
	if err := WriteTable(&out, m); err != nil || !strings.Contains(out.String(), "sockmux") || !strings.Contains(out.String(), "0.38") {
		t.Fatalf("table (%v):\n%s", err, out.String())
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}} {
		if got := Percentile(ds, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing")
	}
}

// TestCharts writes both charts from made-up figures.
func TestCharts(t *testing.T) {
	dir := t.TempDir()
	var figs []Figure
	for i, sys := range Systems {
		for _, w := range []string{"bulk-1", "bulk-64", "wan-1"} {
			figs = append(figs, Figure{Workload: w, System: sys.Name, Value: float64(100 * (i + 1)), Unit: "MB/s", Higher: true})
		}
	}
	figs = append(figs, Figure{Workload: "rr-64B", System: "sockmux", Value: 50, Unit: "p50-µs"})
	tp := filepath.Join(dir, ThroughputChartFile)
	if err := ThroughputChart(tp, figs); err != nil {
		t.Fatal(err)
	}
	wp := filepath.Join(dir, "sub", WANWindowChartFile)
	series := map[string][]float64{"sockmux": {10, 50, 120}, "yamux": {5, 5, 5}}
	if err := SeriesChart(wp, "t", []string{"yamux", "sockmux"}, series, 100*time.Millisecond, 125); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tp, wp} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("sockmux")) {
			t.Errorf("%s is not an SVG naming sockmux", p)
		}
	}
	if err := ThroughputChart(filepath.Join(dir, "none.svg"), figs[len(figs)-1:]); err == nil {
		t.Error("a throughput chart with no throughput figures")
	}
}

// TestRun runs every scenario of a tuning run, tiny, and checks the table.
func TestRun(t *testing.T) {
	for _, scenario := range Scenarios {
		if scenario == "all" {
			continue
		}
		t.Run(scenario, func(t *testing.T) {
			var sb Scoreboard
			var lines int
			cfg := Config{Duration: 30 * time.Millisecond, Streams: 4, RTT: 4 * time.Millisecond, Rate: 100_000_000,
				Warm: 20 * time.Millisecond, Systems: Systems, Progress: func(string) { lines++ }}
			if err := Run(context.Background(), scenario, cfg, &sb); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := WriteTable(&out, sb.Medians()); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "sockmux") || lines == 0 {
				t.Fatalf("%d progress lines; table:\n%s", lines, out.String())
			}
		})
	}
	if err := Run(context.Background(), "nope", Config{Systems: Systems}, &Scoreboard{}); err == nil {
		t.Fatal("an unknown scenario ran")
	}
}
