package bench

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sockmux/sockmux/internal/procgroup"
)

// The idle-links workload (issue 16 item 7): a hub holding many idle edge
// links, as `sockmux listen` does for edges that dialled it and expose
// nothing yet. The hub is a process of its own; the edge links come from
// one helper process per linksPerEdge ("edges": one Node, a link each as
// `sockmux connect` makes one, so the real handshake and keepalive run,
// without a process or an actor system per link). Before the links, once
// they are up and at the end of an idle window in which only keepalives
// run, the hub's resident set (VmRSS) and CPU time (utime + stime) are
// read from /proc.

// DefaultIdleLinks is how many edge links the workload holds.
const DefaultIdleLinks = 10_000

// IdleLinkTarget is the resident memory one idle link may cost the hub
// (issue 16): 64 KiB.
const IdleLinkTarget = 64 << 10

// linksPerEdge is how many links one edges helper holds: two processes for
// 10,000, one per core, each well under the machine's 20,000 open files.
const linksPerEdge = 5_000

// idleSettle is how long the hub is left after it starts and after the
// links are up before it is measured.
const idleSettle = 3 * time.Second

// IdleLinksConfig is one run of the workload.
type IdleLinksConfig struct {
	Links  int           // edge links held (DefaultIdleLinks when 0)
	Window time.Duration // the idle window the CPU is measured over (30 s when 0)
	// Keepalive is both ends' keepalive interval; 0 leaves each system's
	// default (sockmux 15 s, yamux 30 s).
	Keepalive time.Duration
}

func (c IdleLinksConfig) withDefaults() IdleLinksConfig {
	if c.Links <= 0 {
		c.Links = DefaultIdleLinks
	}
	if c.Window <= 0 {
		c.Window = 30 * time.Second
	}
	return c
}

// LinkHub is a hub the workload measures.
type LinkHub struct {
	Name string
	// Edges is the system the edges helper runs (sockmux, yamux).
	Edges string
	// Keyed hubs and their edges hold a pre-shared key.
	Keyed bool
	// Keepalive is the system's default interval, for the figures.
	Keepalive time.Duration
	start     func(keepalive time.Duration, keyFile string) (*runningHub, error)
}

// The hubs: `sockmux listen` from this tree (SOCKMUX_BENCH_BIN), unkeyed
// and keyed; sockmux's Node in a helper process, which also counts its heap,
// stacks and goroutines (and writes heap profiles with
// SOCKMUX_BENCH_HEAPPROFILE); and yamux sessions with yamux's defaults in a
// helper, the baseline of a bare multiplexer per connection.
var (
	ListenHub      = LinkHub{Name: "sockmux-listen", Edges: "sockmux", Keepalive: defaultKeepalive, start: startListenHub}
	ListenHubKeyed = LinkHub{Name: "sockmux-listen-keyed", Edges: "sockmux", Keyed: true, Keepalive: defaultKeepalive, start: startListenHub}
	NodeHub        = LinkHub{Name: "sockmux-node", Edges: "sockmux", Keepalive: defaultKeepalive, start: helperHub("sockmux")}
	NodeHubKeyed   = LinkHub{Name: "sockmux-node-keyed", Edges: "sockmux", Keyed: true, Keepalive: defaultKeepalive, start: helperHub("sockmux")}
	YamuxHub       = LinkHub{Name: "yamux", Edges: "yamux", Keepalive: 30 * time.Second, start: helperHub("yamux")}
	LinkHubs       = []LinkHub{YamuxHub, NodeHub, NodeHubKeyed, ListenHub, ListenHubKeyed}
)

// defaultKeepalive is sockmux's (actors.DefaultKeepalive).
const defaultKeepalive = 15 * time.Second

// runningHub is a hub process.
type runningHub struct {
	addr   string
	pid    int
	helper *helper   // a helper hub
	cmd    *exec.Cmd // sockmux listen
}

// Close ends the hub, at once (SIGKILL: its figures are taken, and 10,000
// GOAWAYs would only take time).
func (h *runningHub) Close() {
	if h.helper != nil {
		h.helper.Close()
		return
	}
	_ = h.cmd.Process.Kill()
	_ = h.cmd.Wait()
}

func startListenHub(keepalive time.Duration, keyFile string) (*runningHub, error) {
	bin, err := sockmuxBinary()
	if err != nil {
		return nil, err
	}
	args := []string{"listen"}
	if keepalive > 0 {
		args = append(args, "--keepalive", keepalive.String())
	}
	if keyFile != "" {
		args = append(args, "--key-file", keyFile)
	}
	cmd, addr, err := startOnFreePort("sockmux listen", func(port string) *exec.Cmd {
		cmd := exec.Command(bin, append(args, "127.0.0.1:"+port)...)
		procgroup.Set(cmd)
		return cmd
	}, `msg="listening for links"`, true)
	if err != nil {
		return nil, err
	}
	return &runningHub{addr: addr, pid: cmd.Process.Pid, cmd: cmd}, nil
}

func helperHub(system string) func(time.Duration, string) (*runningHub, error) {
	return func(keepalive time.Duration, keyFile string) (*runningHub, error) {
		h, err := startHelper("linkhub", system, keepalive.String(), orDash(keyFile))
		if err != nil {
			return nil, err
		}
		return &runningHub{addr: h.addr, pid: h.cmd.Process.Pid, helper: h}, nil
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// IdleLinksResult is one run's figures.
type IdleLinksResult struct {
	Hub       string
	Links     int
	Keepalive time.Duration // the interval both ends ran
	Setup     time.Duration // from the first dial until every link was up
	// The hub's VmRSS before the links, once they were up (after
	// idleSettle) and at the end of the idle window.
	RSSBefore, RSSUp, RSSIdle int64
	Window                    time.Duration
	CPU                       time.Duration // the hub's over the window
	Wakeups                   int64         // its threads' voluntary context switches over the window
	// Of a helper hub (Counted): growth of its live heap, stacks and
	// goroutines from before the links to the end of the window, after a GC.
	Counted                 bool
	Heap, Stack, Goroutines int64
}

// RSSPerLink is the hub's resident growth per link at the end of the window.
func (r IdleLinksResult) RSSPerLink() float64 {
	return float64(r.RSSIdle-r.RSSBefore) / float64(r.Links)
}

// RSSUpPerLink is the growth per link once the links were up.
func (r IdleLinksResult) RSSUpPerLink() float64 {
	return float64(r.RSSUp-r.RSSBefore) / float64(r.Links)
}

// CPUShare is the hub's CPU over the window, as a fraction of one core.
func (r IdleLinksResult) CPUShare() float64 { return r.CPU.Seconds() / r.Window.Seconds() }

// CPUPerKeepalive is the hub's CPU per link and keepalive interval, in µs:
// in each interval it PINGs every link and answers the edge's PING.
func (r IdleLinksResult) CPUPerKeepalive() float64 {
	intervals := r.Window.Seconds() / r.Keepalive.Seconds()
	return us(r.CPU) / (float64(r.Links) * intervals)
}

// WakeupsPerSecond are the hub's thread wake-ups per second of the window.
func (r IdleLinksResult) WakeupsPerSecond() float64 {
	return float64(r.Wakeups) / r.Window.Seconds()
}

// MeasureIdleLinks starts hub, brings up cfg.Links edge links to it from
// edges helpers, leaves them idle for cfg.Window and measures the hub. It
// checks that every link stays up through the window (no edge saw one go
// down) and that the hub holds a socket for each.
func MeasureIdleLinks(hub LinkHub, cfg IdleLinksConfig) (IdleLinksResult, error) {
	cfg = cfg.withDefaults()
	res := IdleLinksResult{Hub: hub.Name, Links: cfg.Links, Keepalive: hub.Keepalive, Window: cfg.Window}
	if cfg.Keepalive > 0 {
		res.Keepalive = cfg.Keepalive
	}
	var keyFile string
	if hub.Keyed {
		dir, err := os.MkdirTemp("", "sockmux-bench-links-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		key := make([]byte, 32)
		rand.Read(key)
		keyFile = filepath.Join(dir, "key")
		if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			return res, err
		}
	}
	h, err := hub.start(cfg.Keepalive, keyFile)
	if err != nil {
		return res, fmt.Errorf("%s: %w", hub.Name, err)
	}
	defer h.Close()
	time.Sleep(idleSettle)
	if res.RSSBefore, err = procRSS(h.pid); err != nil {
		return res, err
	}
	var before hubMemory
	if h.helper != nil {
		if before, err = askHubMemory(h.helper); err != nil {
			return res, err
		}
	}
	start := time.Now()
	edges, err := startEdges(hub.Edges, h.addr, cfg.Links, cfg.Keepalive, keyFile)
	for _, e := range edges {
		defer e.Close()
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", hub.Name, err)
	}
	res.Setup = time.Since(start)
	time.Sleep(idleSettle)
	if res.RSSUp, err = procRSS(h.pid); err != nil {
		return res, err
	}
	profiling := h.helper != nil && os.Getenv(HelperCPUProfileEnv) != ""
	if profiling {
		if _, err := h.helper.ask("cpu-start"); err != nil {
			return res, err
		}
	}
	cpu0, sleeps0 := treeUse([]int{h.pid})
	t0 := time.Now()
	time.Sleep(cfg.Window)
	cpu1, sleeps1 := treeUse([]int{h.pid})
	if profiling {
		if _, err := h.helper.ask("cpu-stop"); err != nil {
			return res, err
		}
	}
	res.Window = time.Since(t0)
	res.CPU, res.Wakeups = cpu1-cpu0, sleeps1-sleeps0
	if res.RSSIdle, err = procRSS(h.pid); err != nil {
		return res, err
	}
	if err := checkLinks(h, edges, cfg.Links); err != nil {
		return res, fmt.Errorf("%s: %w", hub.Name, err)
	}
	if h.helper != nil {
		after, err := askHubMemory(h.helper)
		if err != nil {
			return res, err
		}
		res.Counted = true
		res.Heap, res.Stack, res.Goroutines = after.Heap-before.Heap, after.Stack-before.Stack, after.Goroutines-before.Goroutines
	}
	return res, nil
}

// startEdges starts the edges helpers for n links to hub, at once, and
// waits until all have their links up.
func startEdges(system, hub string, n int, keepalive time.Duration, keyFile string) ([]*helper, error) {
	var (
		mu    sync.Mutex
		hs    []*helper
		first error
		wg    sync.WaitGroup
	)
	for left := n; left > 0; left -= linksPerEdge {
		k := min(left, linksPerEdge)
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := startHelper("edges", system, hub, strconv.Itoa(k), keepalive.String(), orDash(keyFile))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			if h != nil {
				hs = append(hs, h)
			}
		}()
	}
	wg.Wait()
	return hs, first
}

// checkLinks fails unless every edge still has its links up and never saw
// one go down, and the hub has a socket open for each link.
func checkLinks(h *runningHub, edges []*helper, n int) error {
	up := 0
	for _, e := range edges {
		f, err := e.ask("links")
		if err != nil {
			return err
		}
		if len(f) != 2 {
			return fmt.Errorf("edges said links %q", f)
		}
		if f[1] != "0" {
			return fmt.Errorf("%s links went down while idle", f[1])
		}
		k, _ := strconv.Atoi(f[0])
		up += k
	}
	if up != n {
		return fmt.Errorf("%d links up at the end, want %d", up, n)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", h.pid))
	if err != nil {
		return err
	}
	if len(fds) < n {
		return fmt.Errorf("the hub holds %d open files, fewer than the %d links", len(fds), n)
	}
	return nil
}

// hubMemory is what a helper hub says of its memory.
type hubMemory struct {
	Memory
	Goroutines int64
}

func askHubMemory(h *helper) (hubMemory, error) {
	v, err := h.askInts("mem", 4)
	if err != nil {
		return hubMemory{}, err
	}
	return hubMemory{Memory{Heap: v[0], Stack: v[1], RSS: v[2]}, v[3]}, nil
}

// errNoProc: no /proc to read a process's figures from (Linux only).
var errNoProc = errors.New("reading the hub's /proc/PID/status")

// procRSS is process pid's VmRSS, in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNoProc, err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// WriteIdleLinksTable writes the medians of each hub's rounds, with each
// round's resident figure in brackets, and the ratios to the target and
// to base (a hub's name; "" for none).
func WriteIdleLinksTable(w io.Writer, rounds map[string][]IdleLinksResult, order []string, base string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "hub\tlinks\tsetup s\tresident B/link (rounds)\tx-target\tx-"+cmp.Or(base, "base")+"\tup B/link\tCPU % of a core\tµs CPU/link/keepalive\twake-ups/s\theap B/link\tstacks B/link\tgoroutines/link")
	baseRSS := medianValue(perRound(rounds[base], IdleLinksResult.RSSPerLink))
	for _, name := range order {
		rs := rounds[name]
		if len(rs) == 0 {
			continue
		}
		rss := perRound(rs, IdleLinksResult.RSSPerLink)
		var each []string
		for _, v := range rss {
			each = append(each, fmt.Sprintf("%.0f", v))
		}
		m := medianValue(rss)
		xBase := "–"
		if baseRSS > 0 {
			xBase = fmt.Sprintf("%.2f", m/baseRSS)
		}
		counted := func(format string, v func(IdleLinksResult) float64) string {
			if !rs[0].Counted {
				return "–"
			}
			return fmt.Sprintf(format, medianValue(perRound(rs, v)))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.0f (%s)\t%.3f\t%s\t%.0f\t%.2f\t%.1f\t%.0f\t%s\t%s\t%s\n", name, rs[0].Links,
			medianValue(perRound(rs, func(r IdleLinksResult) float64 { return r.Setup.Seconds() })),
			m, strings.Join(each, ", "), m/IdleLinkTarget, xBase,
			medianValue(perRound(rs, IdleLinksResult.RSSUpPerLink)),
			100*medianValue(perRound(rs, IdleLinksResult.CPUShare)),
			medianValue(perRound(rs, IdleLinksResult.CPUPerKeepalive)),
			medianValue(perRound(rs, IdleLinksResult.WakeupsPerSecond)),
			counted("%.0f", func(r IdleLinksResult) float64 { return float64(r.Heap) / float64(r.Links) }),
			counted("%.0f", func(r IdleLinksResult) float64 { return float64(r.Stack) / float64(r.Links) }),
			counted("%.2f", func(r IdleLinksResult) float64 { return float64(r.Goroutines) / float64(r.Links) }))
	}
	return tw.Flush()
}

func perRound(rs []IdleLinksResult, v func(IdleLinksResult) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = v(r)
	}
	return out
}
