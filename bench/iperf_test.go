package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestParseIperfJSON: the receiver's bytes and seconds are read from
// iperf3 -J; an error it reports, a run that moved nothing and output
// that is not JSON are errors naming what was wrong.
func TestParseIperfJSON(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want IperfRun
		err  string
	}{
		{`{"end":{"sum_sent":{"bytes":9},"sum_received":{"bytes":5000000,"seconds":2.5}}}`, IperfRun{5000000, 2.5}, ""},
		{`{"error":"unable to connect to server"}`, IperfRun{}, "unable to connect"},
		{`{"end":{"sum_received":{"bytes":0,"seconds":1}}}`, IperfRun{}, "got 0 bytes"},
		{`iperf3: error`, IperfRun{}, "iperf3 -J"},
	} {
		got, err := ParseIperfJSON([]byte(tc.out))
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %+v, %v; want %+v, an error with %q", tc.out, got, err, tc.want, tc.err)
		}
	}
	if r := (IperfRun{Bytes: 3e6, Seconds: 1.5}).Rate(); r != 2 {
		t.Fatalf("3 MB in 1.5 s: %v MB/s, want 2", r)
	}
}

// TestIperfWorkload: one short round of iperf3 through sockmux keyed and
// unkeyed, each peer a sockmux process built from this tree, yields a rate
// and a bytes-per-CPU-second figure for both, and the ratios of the two.
func TestIperfWorkload(t *testing.T) {
	testkit.NeedTool(t, "iperf3")
	testkit.NeedTool(t, "go")
	res, err := MeasureIperf([]System{SockmuxProcs(true), SockmuxProcs(false)}, IperfConfig{Rounds: 1, Seconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"sockmux-keyed", "sockmux-unkeyed"} {
		if len(res.Rate[s]) != 1 || res.Rate[s][0] <= 0 || len(res.PerCPU[s]) != 1 || res.PerCPU[s][0] <= 0 {
			t.Fatalf("%s: rate %v, per CPU-second %v; want one positive figure each", s, res.Rate[s], res.PerCPU[s])
		}
	}
	if r := res.Ratio("sockmux-keyed", "sockmux-unkeyed", false); r <= 0 {
		t.Fatalf("keyed ÷ unkeyed %v", r)
	}
	var b strings.Builder
	if err := WriteIperfTable(&b, res, [][2]string{{"sockmux-keyed", "sockmux-unkeyed"}}); err != nil || !strings.Contains(b.String(), "sockmux-keyed ÷ sockmux-unkeyed") {
		t.Fatalf("table: %v\n%s", err, b.String())
	}
}

// BenchmarkIperf runs iperf3, one stream, through sockmux keyed (a
// pre-shared key: the link is encrypted), sockmux unkeyed, each with both
// peers sockmux processes built from this tree, and OpenSSH's ssh -L
// (aes128-gcm, an sshd of its own), interleaved, SOCKMUX_BENCH_ROUNDS
// rounds (5 by default) of SOCKMUX_BENCH_SECONDS (5) each, in one call:
// run it with -benchtime 1x. It reports the median rates, bytes per
// CPU-second of both peers' processes, and the keyed link's ratios to ssh
// and to the unkeyed link; it prints the table. Without iperf3 or
// OpenSSH it skips.
func BenchmarkIperf(b *testing.B) {
	cfg := DefaultIperfConfig
	if n, err := strconv.Atoi(os.Getenv("SOCKMUX_BENCH_ROUNDS")); err == nil && n > 0 {
		cfg.Rounds = n
	}
	if n, err := strconv.Atoi(os.Getenv("SOCKMUX_BENCH_SECONDS")); err == nil && n > 0 {
		cfg.Seconds = n
	}
	keyed, unkeyed := SockmuxProcs(true), SockmuxProcs(false)
	res, err := MeasureIperf([]System{keyed, unkeyed, OpenSSH}, cfg)
	if errors.Is(err, ErrMissingTool) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range res.Systems {
		b.ReportMetric(medianValue(res.Rate[s]), s+"-MB/s")
		b.ReportMetric(medianValue(res.PerCPU[s]), s+"-MB/cpu-s")
	}
	pairs := [][2]string{{keyed.Name, OpenSSH.Name}, {keyed.Name, unkeyed.Name}, {unkeyed.Name, OpenSSH.Name}}
	for _, p := range pairs[:2] {
		b.ReportMetric(res.Ratio(p[0], p[1], false), "x-"+p[1])
		b.ReportMetric(res.Ratio(p[0], p[1], true), "cpu-x-"+p[1])
	}
	var t strings.Builder
	if err := WriteIperfTable(&t, res, pairs); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("iperf3, one stream, medians of %d interleaved rounds of %d s (each round's figure in brackets):\n%s", cfg.Rounds, cfg.Seconds, t.String())
}

// BenchmarkSecureRedis is BenchmarkRedis through sockmux keyed and
// unkeyed (both peers sockmux processes built from this tree) beside ssh
// -L: the round trip of GET on one connection is the latency a keyed link
// adds. With SOCKMUX_BENCH_BASE_BIN (BaseBinEnv) a second binary runs
// keyed beside them in the same rounds: x-base-* is this tree's keyed
// figure over it. Run it with -benchtime 1x; without redis or OpenSSH it
// skips.
func BenchmarkSecureRedis(b *testing.B) {
	cfg := DefaultRedisConfig
	if n, err := strconv.Atoi(os.Getenv("SOCKMUX_BENCH_ROUNDS")); err == nil && n > 0 {
		cfg.Rounds = n
	}
	keyed, unkeyed := SockmuxProcs(true), SockmuxProcs(false)
	systems := []System{Direct, OpenSSH, unkeyed, keyed}
	base, withBase := SockmuxProcsBase()
	if withBase {
		systems = append(systems, base)
	}
	res, err := MeasureRedis(systems, cfg)
	if errors.Is(err, ErrMissingTool) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range []string{WorkloadRedisGet1, WorkloadRedisGet50, WorkloadRedisTTFR} {
		if m := res.Median(w, base.Name); withBase && m > 0 {
			b.ReportMetric(res.Median(w, keyed.Name)/m, "x-base-"+strings.TrimPrefix(w, "redis-"))
			if s := res.Median(w, OpenSSH.Name); s > 0 {
				b.ReportMetric(m/s, "base-x-ssh-"+strings.TrimPrefix(w, "redis-"))
			}
		}
		if m := res.Median(w, unkeyed.Name); m > 0 {
			b.ReportMetric(res.Median(w, keyed.Name)/m, "x-unkeyed-"+strings.TrimPrefix(w, "redis-"))
		}
		if m := res.Median(w, OpenSSH.Name); m > 0 {
			b.ReportMetric(res.Median(w, keyed.Name)/m, "x-ssh-"+strings.TrimPrefix(w, "redis-"))
		}
	}
	bases := []string{unkeyed.Name, OpenSSH.Name}
	if withBase {
		bases = append(bases, base.Name)
	}
	for _, base := range bases {
		var t strings.Builder
		if err := WriteRedisTable(&t, res, keyed.Name, base); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("medians of %d interleaved rounds, keyed against %s:\n%s", cfg.Rounds, base, t.String())
	}
}
