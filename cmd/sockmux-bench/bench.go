package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/profile"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sockmux/sockmux/bench"
)

// benchOptions are sockmux-bench's flags.
type benchOptions struct {
	duration, rtt, warm time.Duration
	streams             int
	rate                string
	systems             string
	charts              string
	cpuProfile          string
	memProfile          string
	mutexProfile        string
}

// benchCmd is sockmux-bench: a tuning run of the benchmark harness, every
// system in this process, a live progress line on stderr, the table of
// figures and ratios on stdout, and profiles on request.
func benchCmd(logger func() (*slog.Logger, error)) *cobra.Command {
	o := benchOptions{}
	cmd := &cobra.Command{
		Use:   "sockmux-bench [scenario]",
		Short: "Run a benchmark scenario through sockmux, yamux, smux and a relay chain in this process; print figures and ratios",
		Long: `Run a benchmark scenario end to end in this process, through each system in
turn (a relay chain, tunnels on hashicorp/yamux and xtaci/smux, sockmux), and
print each figure with its ratio to the relay chain (x-relay) and to the better
of yamux and smux (x-mux), measured in the same run.

Scenarios (default bulk):
  bulk   push bytes through a forward: 1 stream, then 64 (--streams: that many)
  rr     64-byte requests and answers, one at a time: p50 and p99 round trip
  idle   open 10,000 streams (--streams) and keep them idle: both peers' memory
         per stream (each peer, and the server, in a process of its own)
  wan    push across an emulated path (--rtt, --rate): 1 stream, then 64
         (throughput, its fraction of the link rate; with many, peak memory)
  ttfr   a new connection's time to its first answer across the emulated path,
         against connecting directly across it
  all    every scenario in turn

The go test benchmarks (go test -bench . ./bench/) measure the same things;
BENCHMARKS.md holds their figures.`,
		Example: `  # one stream and 64, through sockmux, yamux, smux and a relay chain
  go run ./cmd/sockmux-bench bulk
  go run ./cmd/sockmux-bench rr`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			scenario := "bulk"
			if len(args) == 1 {
				scenario = args[0]
			}
			cfg, err := o.config(scenario)
			if err != nil {
				return err
			}
			// The idle scenario's helpers are this binary again, with no
			// arguments (bench.HelperCommand's default): main runs them.
			stderr := cmd.ErrOrStderr()
			tty := isTerminal(stderr) // a progress line redrawn in place, only where one is seen
			if tty {
				cfg.Progress = func(line string) { fmt.Fprintf(stderr, "\r%s\x1b[K", line) }
			}
			stop, err := o.startProfile(log)
			if err != nil {
				return err
			}
			var sb bench.Scoreboard
			runErr := bench.Run(cmd.Context(), scenario, cfg, &sb)
			if tty {
				fmt.Fprint(stderr, "\r\x1b[K")
			}
			if err := stop(); err != nil && runErr == nil {
				runErr = err
			}
			figs := sb.Medians()
			if len(figs) > 0 {
				if err := bench.WriteTable(cmd.OutOrStdout(), figs); err != nil {
					return err
				}
			}
			if runErr != nil {
				return runErr
			}
			if o.charts != "" {
				path := filepath.Join(o.charts, bench.ThroughputChartFile)
				if err := bench.ThroughputChart(path, figs); err != nil {
					return fmt.Errorf("chart: %w", err)
				}
				log.Info("chart written", "path", path)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 5*time.Second, "how long each system runs a throughput or latency scenario")
	f.IntVar(&o.streams, "streams", 0, "streams at once, replacing the scenario's own (bulk and wan: 1 and 64; idle: 10000)")
	f.DurationVar(&o.rtt, "rtt", bench.DefaultRTT, "round-trip time of the emulated path (wan, ttfr)")
	f.StringVar(&o.rate, "rate", "1Gbit", "rate of the emulated path, per connection and direction: 1Gbit, 100Mbit, 125MB (bytes), 0 for no cap")
	f.DurationVar(&o.warm, "warm", bench.DefaultWarm, "how long wan pushes before it measures (the windows grow)")
	f.StringVar(&o.systems, "systems", "relay,yamux,smux,sockmux", "systems to run, in order (baselines first for the ratios)")
	f.StringVar(&o.charts, "charts", "", "write an SVG chart of the throughput figures into `DIR`")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE`")
	f.StringVar(&o.memProfile, "memprofile", "", "write a heap profile at the end of the run to `FILE`")
	f.StringVar(&o.mutexProfile, "mutexprofile", "", "write a mutex contention profile of the run to `FILE`")
	return cmd
}

// config checks the flags and makes the run's configuration.
func (o *benchOptions) config(scenario string) (bench.Config, error) {
	cfg := bench.Config{Duration: o.duration, Streams: o.streams, RTT: o.rtt, Warm: o.warm}
	known := false
	for _, s := range bench.Scenarios {
		known = known || s == scenario
	}
	if !known {
		return cfg, fmt.Errorf("%w: unknown scenario %q: want one of %s", errUsage, scenario, strings.Join(bench.Scenarios, ", "))
	}
	if o.duration <= 0 || o.rtt <= 0 || o.warm <= 0 {
		return cfg, fmt.Errorf("%w: --duration, --rtt and --warm must be positive", errUsage)
	}
	if o.streams < 0 {
		return cfg, fmt.Errorf("%w: --streams must not be negative", errUsage)
	}
	rate, err := parseRate(o.rate)
	if err != nil {
		return cfg, fmt.Errorf("%w: --rate: %w", errUsage, err)
	}
	cfg.Rate = rate
	for _, name := range strings.Split(o.systems, ",") {
		sys, ok := bench.SystemByName(strings.TrimSpace(name))
		if !ok || sys.Name == bench.Direct.Name {
			return cfg, fmt.Errorf("%w: --systems: unknown system %q: want relay, yamux, smux or sockmux", errUsage, name)
		}
		cfg.Systems = append(cfg.Systems, sys)
	}
	n := 0
	for _, p := range []string{o.cpuProfile, o.memProfile, o.mutexProfile} {
		if p != "" {
			n++
		}
	}
	if n > 1 {
		return cfg, fmt.Errorf("%w: one profile at a time: --cpuprofile, --memprofile or --mutexprofile", errUsage)
	}
	return cfg, nil
}

// parseRate reads a rate in bits per second (1Gbit, 100Mbit, 10kbit) or
// bytes per second (125MB, 64kB, 1000B), decimal prefixes, and returns
// bytes per second; "0" is no cap.
func parseRate(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' && r != '.' })
	unit := s[len(num):]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: want a number and a unit, such as 1Gbit or 125MB", s)
	}
	scale := map[string]float64{"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
	var perByte float64
	prefix := unit
	switch {
	case strings.HasSuffix(unit, "bit"):
		prefix, perByte = strings.TrimSuffix(unit, "bit"), 8
	case strings.HasSuffix(unit, "B"):
		prefix, perByte = strings.TrimSuffix(unit, "B"), 1
	default:
		return 0, fmt.Errorf("%q: the unit must end in bit (bits per second) or B (bytes per second)", s)
	}
	m, ok := scale[prefix]
	if !ok {
		return 0, fmt.Errorf("%q: unknown prefix %q: want k, M or G", s, prefix)
	}
	return int64(v * m / perByte), nil
}

// startProfile starts the profile a flag asks for and returns what stops
// it and moves the file where the flag says.
func (o *benchOptions) startProfile(log *slog.Logger) (func() error, error) {
	var mode func(*profile.Profile)
	var file, written string
	switch {
	case o.cpuProfile != "":
		mode, file, written = profile.CPUProfile, o.cpuProfile, "cpu.pprof"
	case o.memProfile != "":
		mode, file, written = profile.MemProfile, o.memProfile, "mem.pprof"
	case o.mutexProfile != "":
		mode, file, written = profile.MutexProfile, o.mutexProfile, "mutex.pprof"
	default:
		return func() error { return nil }, nil
	}
	// pkg/profile names its file in a directory; make it beside FILE.
	dir, err := os.MkdirTemp(filepath.Dir(file), ".sockmux-profile-")
	if err != nil {
		return nil, err
	}
	p := profile.Start(mode, profile.ProfilePath(dir), profile.NoShutdownHook, profile.Quiet)
	return func() error {
		p.Stop()
		defer os.RemoveAll(dir)
		if err := os.Rename(filepath.Join(dir, written), file); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		log.Info("profile written", "path", file)
		return nil
	}, nil
}

// isTerminal says whether w is a terminal (golang.org/x/term: a termios
// ioctl on unix, the console mode on Windows).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
