package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runBench runs sockmux-bench with args, as main would.
func runBench(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	logger := func() (*slog.Logger, error) { return slog.New(slog.NewTextHandler(&errOut, nil)), nil }
	cmd := benchCmd(logger)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// TestBenchScenarios runs each scenario briefly and checks the table has
// every system with its ratios, and the progress line was shown. (idle is
// left to package bench's tests: its helper processes are this binary run
// again as sockmux-bench, which a test binary is not.)
func TestBenchScenarios(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"bulk", "--streams", "2"}, []string{"bulk-2", "relay", "yamux", "smux", "sockmux", "MB/s"}},
		{[]string{"rr", "--systems", "relay,smux,sockmux"}, []string{"rr-64B", "p50-µs", "p99-µs"}},
		{[]string{"wan", "--streams", "2", "--rtt", "4ms", "--rate", "800Mbit", "--warm", "20ms"}, []string{"wan-2", "x-link", "peak-MiB"}},
		{[]string{"ttfr", "--rtt", "4ms", "--systems", "sockmux"}, []string{"ttfr", "direct", "x-direct"}},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			out, errOut, err := runBench(t, append(tc.args, "--duration", "30ms")...)
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			for _, w := range append(tc.want, "x-relay", "x-mux") {
				if !strings.Contains(out, w) {
					t.Errorf("the table does not show %q:\n%s", w, out)
				}
			}
			if strings.Contains(errOut, "\r") {
				t.Errorf("a progress line redrawn on a stderr that is no terminal: %q", errOut)
			}
		})
	}
}

// TestBenchProfilesAndCharts: each profile flag writes its file, and
// --charts the throughput chart.
func TestBenchProfilesAndCharts(t *testing.T) {
	dir := t.TempDir()
	for _, flag := range []string{"--cpuprofile", "--memprofile", "--mutexprofile"} {
		t.Run(flag, func(t *testing.T) {
			file := filepath.Join(dir, strings.TrimPrefix(flag, "--")+".pprof")
			if _, errOut, err := runBench(t, "bulk", "--streams", "1", "--systems", "sockmux", "--duration", "20ms", flag, file, "--charts", dir); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			if st, err := os.Stat(file); err != nil || st.Size() == 0 {
				t.Fatalf("profile %s: %v", file, err)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(dir, "throughput.svg")); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Fatalf("chart: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".sockmux-profile-*")); len(m) != 0 {
		t.Fatalf("left behind: %v", m)
	}
}

// TestBenchBadArgs: each bad command line is a usage error naming what is
// wrong.
func TestBenchBadArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `"nope"`},
		{[]string{"bulk", "--rate", "fast"}, `"fast"`},
		{[]string{"bulk", "--rate", "1Tbit"}, `"T"`},
		{[]string{"bulk", "--systems", "relay,quic"}, `"quic"`},
		{[]string{"bulk", "--duration", "0s"}, "--duration"},
		{[]string{"bulk", "--streams", "-1"}, "--streams"},
		{[]string{"bulk", "--cpuprofile", "a", "--memprofile", "b"}, "one profile"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := runBench(t, tc.args...)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a usage error naming %s", err, tc.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"1Gbit", 125_000_000}, {"100Mbit", 12_500_000}, {"125MB", 125_000_000}, {"64kB", 64_000}, {"1000B", 1000}, {"0", 0}, {"1.5Gbit", 187_500_000}} {
		if got, err := parseRate(tc.in); err != nil || got != tc.want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// TestRunExitCodes: main's exit codes, 2 for a command line that does not
// parse (a flag or a scenario), 0 for help.
func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--bogus"}, 2, "--bogus"},
		{[]string{"nope"}, 2, `"nope"`},
		{[]string{"--log-level", "loud"}, 2, "loud"},
		{[]string{"--help"}, 0, "go run ./cmd/sockmux-bench"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errOut); code != tc.code {
				t.Fatalf("exit code %d, want %d\n%s", code, tc.code, errOut.String())
			}
			if !strings.Contains(out.String()+errOut.String(), tc.want) {
				t.Fatalf("the output does not name %s:\n%s%s", tc.want, out.String(), errOut.String())
			}
		})
	}
}
