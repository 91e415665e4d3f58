package bench

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Config is a tuning run's settings (cmd/sockmux-bench).
type Config struct {
	// Duration is how long each system runs a throughput or latency
	// workload (bulk, rr, wan, ttfr).
	Duration time.Duration
	// Streams replaces a workload's own number of streams (bulk: 1 and 64;
	// idle: 10,000; wan: 1 and 64) when not 0.
	Streams int
	// RTT and Rate are the emulated path of wan and ttfr: the round trip,
	// and bytes per second per connection in each direction.
	RTT  time.Duration
	Rate int64
	// Warm is how long wan pushes before it measures (the windows grow).
	Warm time.Duration
	// Systems run in order; the relay chain, yamux and smux should come
	// before sockmux for its ratios.
	Systems []System
	// Progress, when set, receives a one-line status several times a
	// second.
	Progress func(status string)
}

// The workloads' names, as tables and charts show them.
const (
	WorkloadRoundTrip     = "rr-64B"
	WorkloadFirstResponse = "ttfr"
)

// WorkloadBulk names the bulk workload on a number of streams.
func WorkloadBulk(streams int) string { return fmt.Sprintf("bulk-%d", streams) }

// WorkloadIdle names the idle workload holding a number of streams.
func WorkloadIdle(streams int) string { return fmt.Sprintf("idle-%d", streams) }

// WorkloadWAN names the WAN workload on a number of streams.
func WorkloadWAN(streams int) string { return fmt.Sprintf("wan-%d", streams) }

// The workloads' defaults (issue 7).
const (
	DefaultIdleStreams = 10_000
	DefaultRTT         = 50 * time.Millisecond
	DefaultRate        = 125_000_000 // 1 Gbit/s
	DefaultWarm        = time.Second
	RequestSize        = 64
)

// Scenarios are the scenarios Run takes; "all" is every other in turn.
var Scenarios = []string{"bulk", "rr", "idle", "wan", "ttfr", "all"}

// Run runs a scenario through cfg.Systems and adds every figure to sb.
func Run(ctx context.Context, scenario string, cfg Config, sb *Scoreboard) error {
	if len(cfg.Systems) == 0 {
		return fmt.Errorf("no system to run")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.RTT <= 0 {
		cfg.RTT = DefaultRTT
	}
	if cfg.Rate < 0 {
		cfg.Rate = 0
	}
	if cfg.Warm <= 0 {
		cfg.Warm = DefaultWarm
	}
	streams := func(def ...int) []int {
		if cfg.Streams > 0 {
			return []int{cfg.Streams}
		}
		return def
	}
	r := runner{ctx: ctx, cfg: cfg, sb: sb}
	switch scenario {
	case "bulk":
		return r.bulk(streams(1, 64))
	case "rr":
		return r.roundTrips()
	case "idle":
		return r.idle(streams(DefaultIdleStreams)[0])
	case "wan":
		return r.wan(streams(1, 64))
	case "ttfr":
		return r.firstResponse()
	case "all":
		for _, f := range []func() error{
			func() error { return r.bulk(streams(1, 64)) },
			r.roundTrips,
			func() error { return r.idle(streams(DefaultIdleStreams)[0]) },
			func() error { return r.wan(streams(1, 64)) },
			r.firstResponse,
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown scenario %q: want one of %v", scenario, Scenarios)
}

type runner struct {
	ctx context.Context
	cfg Config
	sb  *Scoreboard
}

// each runs measure for every system but those skipped, with a progress
// line made by status from the probe's count and the time spent.
func (r runner) each(workload string, systems []System, status func(done int64, spent time.Duration) string,
	measure func(System, Probe) (Figure, error)) error {
	for _, sys := range systems {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		var done atomic.Int64
		var started atomic.Int64 // unix nanoseconds
		p := Probe{Done: &done, Start: func() { started.Store(time.Now().UnixNano()) }}
		stopProgress := r.progress(func() string {
			var spent time.Duration
			if s := started.Load(); s != 0 {
				spent = time.Since(time.Unix(0, s))
			}
			return fmt.Sprintf("%s %s: %s", workload, sys.Name, status(done.Load(), spent))
		})
		f, err := measure(sys, p)
		stopProgress()
		if err != nil {
			return fmt.Errorf("%s: %w", workload, err)
		}
		r.sb.Add(f)
	}
	return nil
}

// progress calls the Progress hook every 200 ms with line() until stopped.
func (r runner) progress(line func() string) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			r.cfg.Progress(line())
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func (r runner) rateStatus(total time.Duration) func(int64, time.Duration) string {
	return func(n int64, spent time.Duration) string {
		if spent <= 0 {
			return "setting up"
		}
		return fmt.Sprintf("%.1fs/%.0fs, %.0f MB/s", spent.Seconds(), total.Seconds(), float64(n)/spent.Seconds()/MB)
	}
}

func (r runner) bulk(counts []int) error {
	for _, n := range counts {
		err := r.each(WorkloadBulk(n), r.cfg.Systems, r.rateStatus(r.cfg.Duration), func(sys System, p Probe) (Figure, error) {
			return MeasureBulk(WorkloadBulk(n), sys, Options{Streams: n}, n, Amount{Duration: r.cfg.Duration}, p)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (r runner) roundTrips() error {
	status := func(n int64, spent time.Duration) string {
		if spent <= 0 {
			return "setting up"
		}
		return fmt.Sprintf("%.1fs/%.0fs, %d round trips", spent.Seconds(), r.cfg.Duration.Seconds(), n)
	}
	return r.each(WorkloadRoundTrip, r.cfg.Systems, status, func(sys System, p Probe) (Figure, error) {
		return MeasureRoundTrips(WorkloadRoundTrip, sys, Options{}, RequestSize, Amount{Duration: r.cfg.Duration}, p)
	})
}

// idle leaves out the systems with no peers: the relay chain (whose
// 256 KiB copy buffers would make 1 MiB a stream anyway).
func (r runner) idle(n int) error {
	w := WorkloadIdle(n)
	systems := slices.DeleteFunc(slices.Clone(r.cfg.Systems), func(s System) bool { return s.Far == nil })
	status := func(done int64, _ time.Duration) string { return fmt.Sprintf("%d/%d streams open", done, n) }
	return r.each(w, systems, status, func(sys System, p Probe) (Figure, error) {
		res, err := Idle(sys, n, p.Done)
		if err != nil {
			return Figure{}, err
		}
		return IdleFigure(w, sys.Name, res), nil
	})
}

// wan leaves the relay chain out of the many-stream run: each of its
// connections would get a path of its own.
func (r runner) wan(counts []int) error {
	o := WANOptions(r.cfg.RTT, r.cfg.Rate)
	status := func(n int64, spent time.Duration) string {
		if spent <= 0 {
			return "warming up"
		}
		return fmt.Sprintf("%.1fs/%.0fs, %.1f MB/s at the sink", spent.Seconds(), r.cfg.Duration.Seconds(), float64(n)/spent.Seconds()/MB)
	}
	for _, n := range counts {
		systems := r.cfg.Systems
		if n > 1 {
			systems = slices.DeleteFunc(slices.Clone(systems), func(s System) bool { return s.Name == Relay.Name })
		}
		o := o
		o.Streams = n
		err := r.each(WorkloadWAN(n), systems, status, func(sys System, p Probe) (Figure, error) {
			return MeasureWAN(WorkloadWAN(n), sys, o, n, r.cfg.Warm, Amount{Duration: r.cfg.Duration}, p, n > 1)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// firstResponse runs Direct first: the x-direct of the others.
func (r runner) firstResponse() error {
	o := WANOptions(r.cfg.RTT, r.cfg.Rate)
	systems := append([]System{Direct}, r.cfg.Systems...) // a new slice
	status := func(n int64, spent time.Duration) string {
		return fmt.Sprintf("%.1fs/%.0fs, %d connections", spent.Seconds(), r.cfg.Duration.Seconds(), n)
	}
	return r.each(WorkloadFirstResponse, systems, status, func(sys System, p Probe) (Figure, error) {
		f, err := MeasureFirstResponse(WorkloadFirstResponse, sys, o, Amount{Duration: r.cfg.Duration}, p)
		if err != nil {
			return f, err
		}
		return WithDirect(r.sb, f), nil
	})
}

// WithDirect adds to a time-to-first-response figure its ratio to
// connecting directly (x-direct), from sb's latest Direct figure.
func WithDirect(sb *Scoreboard, f Figure) Figure {
	if d, ok := sb.Latest(f.Workload, Direct.Name); ok && d.Value > 0 && f.System != Direct.Name {
		f.Metrics = append(f.Metrics, Metric{f.Value / d.Value, "x-direct"})
	}
	return f
}
