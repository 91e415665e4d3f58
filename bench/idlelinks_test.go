package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkIdleLinks measures a hub holding 10,000 idle edge links (issue
// 16 item 7): the hub's resident memory per link against the 64 KiB
// target and against yamux's, and its CPU while only keepalives run. The
// hubs (LinkHubs): `sockmux listen` built from this tree, unkeyed and
// keyed; sockmux's Node in a helper process (which also counts heap,
// stacks and goroutines per link); yamux sessions with yamux's defaults.
// Each is a process of its own, its edges come from helper processes,
// and the hubs take turns round by round. Run it with -benchtime 1x; it
// takes about a minute per hub and round.
//
// SOCKMUX_BENCH_LINKS (10,000), SOCKMUX_BENCH_IDLE (the idle window in
// seconds, 30), SOCKMUX_BENCH_KEEPALIVE (a duration for both ends; each
// system's default when unset), SOCKMUX_BENCH_ROUNDS (1) and
// SOCKMUX_BENCH_HUBS (names, comma-separated; all by default) change the
// run; SOCKMUX_BENCH_HEAPPROFILE=DIR makes the helper hubs write heap
// profiles before the links and after the window (hub-0.pprof,
// hub-1.pprof: go tool pprof -diff_base DIR/hub-0.pprof DIR/hub-1.pprof
// shows what the links hold), SOCKMUX_BENCH_CPUPROFILE=DIR a CPU profile
// of the idle window (hub-cpu.pprof).
func BenchmarkIdleLinks(b *testing.B) {
	cfg := IdleLinksConfig{Links: envInt("SOCKMUX_BENCH_LINKS", DefaultIdleLinks),
		Window: time.Duration(envInt("SOCKMUX_BENCH_IDLE", 30)) * time.Second}
	if v := os.Getenv("SOCKMUX_BENCH_KEEPALIVE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("SOCKMUX_BENCH_KEEPALIVE: %v", err)
		}
		cfg.Keepalive = d
	}
	hubs := LinkHubs
	if v := os.Getenv("SOCKMUX_BENCH_HUBS"); v != "" {
		names := strings.Split(v, ",")
		hubs = slices.DeleteFunc(slices.Clone(LinkHubs), func(h LinkHub) bool { return !slices.Contains(names, h.Name) })
		if len(hubs) == 0 {
			b.Fatalf("SOCKMUX_BENCH_HUBS=%s names none of the hubs", v)
		}
	}
	rounds := envInt("SOCKMUX_BENCH_ROUNDS", 1)
	res := map[string][]IdleLinksResult{}
	var order []string
	for _, h := range hubs {
		order = append(order, h.Name)
	}
	for round := range rounds {
		for _, h := range hubs {
			r, err := MeasureIdleLinks(h, cfg)
			if err != nil {
				b.Fatalf("round %d: %v", round+1, err)
			}
			res[h.Name] = append(res[h.Name], r)
		}
	}
	base := ""
	if len(res[YamuxHub.Name]) > 0 {
		base = YamuxHub.Name
	}
	for _, name := range order {
		rss := medianValue(perRound(res[name], IdleLinksResult.RSSPerLink))
		b.ReportMetric(rss, name+"-B/link")
		b.ReportMetric(rss/IdleLinkTarget, name+"-x-target")
		b.ReportMetric(100*medianValue(perRound(res[name], IdleLinksResult.CPUShare)), name+"-cpu-%")
	}
	var t strings.Builder
	if err := WriteIdleLinksTable(&t, res, order, base); err != nil {
		b.Fatal(err)
	}
	ka := "each system's default keepalive (sockmux 15 s, yamux 30 s)"
	if cfg.Keepalive > 0 {
		ka = "keepalive " + cfg.Keepalive.String()
	}
	fmt.Printf("%d idle links, %v idle window, %s, medians of %d rounds:\n%s", cfg.Links, cfg.Window, ka, rounds, t.String())
}

// envInt is the environment variable name as a positive number, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
