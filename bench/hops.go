package bench

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sockmux/sockmux/actors"
)

// The per-hop breakdown: where a round trip through sockmux spends its
// time. Both peers run apart, as for the redis workload, from a test
// binary built with -tags hoptrace, so that each timestamps every stage a
// DATA frame's bytes pass (actors.HopStage). A client here sends GETs to a
// redis-server one at a time on one connection through the tunnel, noting
// when each was written and its answer read; the peers' events that fall
// within a round trip, merged by time (the processes share the wall
// clock), give the stages it passed and the time between each two.

// ErrNotHopTraced is MeasureHops in a build without -tags hoptrace.
var ErrNotHopTraced = errors.New("not a hop-traced build (go test -tags hoptrace)")

// HopGap is the time between two consecutive stages of a round trip.
type HopGap struct {
	From, To string
	Median   time.Duration
}

// HopResult is the breakdown of the round trips that took the most common
// path: Path is the median of each gap along it, client to client.
type HopResult struct {
	Trips     int           // round trips measured
	PathTrips int           // of them, those that took Path
	RoundTrip time.Duration // the median round trip of those
	Path      []HopGap
}

// MeasureHops runs n GET round trips through sockmux, its peers apart and
// hop-traced, to a fresh Redis, and returns the breakdown. With fresh,
// each round trip is a new connection's first, from starting to connect
// to having the answer.
func MeasureHops(n int, fresh bool) (*HopResult, error) {
	if !actors.HopTracing {
		return nil, ErrNotHopTraced
	}
	srv, err := NewRedis()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	far, err := startHelper("far", Sockmux.Name, srv.Addr(), "0")
	if err != nil {
		return nil, err
	}
	defer far.Close()
	near, err := startHelper("near", Sockmux.Name, far.addr, srv.Addr(), "0")
	if err != nil {
		return nil, err
	}
	defer near.Close()
	req := respCommand("GET", RedisKey)
	want := "$" + strconv.Itoa(len(redisValue)) + "\r\n" + redisValue + "\r\n"
	resp := make([]byte, len(want))
	trips := make([][2]int64, 0, n)
	var c net.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	warm := 1000
	if fresh {
		warm = 20
	}
	for i := range warm + n {
		tw := time.Now().UnixNano()
		if c == nil {
			if c, err = net.Dial("tcp", near.addr); err != nil {
				return nil, err
			}
		}
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return nil, err
		}
		tr := time.Now().UnixNano()
		if string(resp) != want {
			return nil, fmt.Errorf("GET answered %q", resp)
		}
		if i >= warm {
			trips = append(trips, [2]int64{tw, tr})
		}
		if fresh {
			c.Close()
			c = nil
		}
	}
	dir, err := os.MkdirTemp("", "sockmux-hops-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var events []labelled
	for _, h := range []struct {
		name string
		h    *helper
	}{{"near", near}, {"far", far}} {
		path := filepath.Join(dir, h.name)
		if _, err := fmt.Fprintln(h.h.in, "hops "+path); err != nil {
			return nil, err
		}
		if _, err := h.h.line("hops"); err != nil {
			return nil, err
		}
		ev, err := readHops(path, h.name)
		if err != nil {
			return nil, err
		}
		events = append(events, ev...)
	}
	return breakdown(trips, events), nil
}

// labelled is a peer's HopEvent.
type labelled struct {
	label string
	at    int64
}

// breakdown finds, for each round trip, the events within it. The most
// common sequence of stages is the path; a round trip that passed the same
// stages, each once, in whatever order the clocks put two that came
// within a microsecond of each other, counts too. It returns the median
// of each gap along the path.
func breakdown(trips [][2]int64, events []labelled) *HopResult {
	slices.SortFunc(events, func(a, b labelled) int { return cmp.Compare(a.at, b.at) })
	type trip struct {
		tw, tr int64
		ev     []labelled
	}
	var all []trip
	count := map[string]int{}
	j := 0
	for _, t := range trips {
		for j < len(events) && events[j].at <= t[0] {
			j++
		}
		k := j
		for k < len(events) && events[k].at < t[1] {
			k++
		}
		all = append(all, trip{t[0], t[1], events[j:k]})
		count[signature(events[j:k], false)]++
		j = k
	}
	res := &HopResult{Trips: len(trips)}
	var best string
	for sig, n := range count {
		if n > count[best] || n == count[best] && sig < best {
			best = sig
		}
	}
	var path []string
	if best != "" {
		path = strings.Split(best, "|")
	}
	sorted := signature(labelsOf(path), true)
	labels := append(append([]string{"client wrote"}, path...), "client read")
	gaps := make([][]time.Duration, len(labels)-1)
	var rtts []time.Duration
	for _, t := range all {
		if signature(t.ev, true) != sorted {
			continue
		}
		at := map[string]int64{"client wrote": t.tw, "client read": t.tr}
		for _, e := range t.ev {
			at[e.label] = e.at
		}
		for i := range gaps {
			gaps[i] = append(gaps[i], time.Duration(at[labels[i+1]]-at[labels[i]]))
		}
		rtts = append(rtts, time.Duration(t.tr-t.tw))
	}
	res.PathTrips = len(rtts)
	if len(rtts) == 0 {
		return res
	}
	res.RoundTrip = Percentile(rtts, 50)
	for i, g := range gaps {
		res.Path = append(res.Path, HopGap{From: labels[i], To: labels[i+1], Median: Percentile(g, 50)})
	}
	return res
}

// signature joins the events' labels, in time order or sorted.
func signature(ev []labelled, sorted bool) string {
	s := make([]string, len(ev))
	for i, e := range ev {
		s[i] = e.label
	}
	if sorted {
		slices.Sort(s)
	}
	return strings.Join(s, "|")
}

func labelsOf(labels []string) []labelled {
	ev := make([]labelled, len(labels))
	for i, l := range labels {
		ev[i].label = l
	}
	return ev
}

// writeHops writes the events this process recorded to path, one
// "STAGE NANOS" a line.
func writeHops(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, e := range actors.HopEvents() {
		fmt.Fprintf(w, "%d %d\n", e.Stage, e.At)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readHops reads what writeHops wrote, labelling each event with peer.
func readHops(path, peer string) ([]labelled, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s uint8
		var at int64
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &s, &at); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, sc.Text(), err)
		}
		out = append(out, labelled{label: peer + ": " + actors.HopStage(s).String(), at: at})
	}
	return out, sc.Err()
}

// WriteHops writes the breakdown as a table, each gap with its share of
// the median round trip.
func WriteHops(w io.Writer, r *HopResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d round trips took this path; their median round trip %.1f µs\n\n",
		r.PathTrips, r.Trips, us(r.RoundTrip))
	b.WriteString("| from | to | median µs |\n|---|---|---|\n")
	var sum time.Duration
	for _, g := range r.Path {
		fmt.Fprintf(&b, "| %s | %s | %.1f |\n", g.From, g.To, us(g.Median))
		sum += g.Median
	}
	fmt.Fprintf(&b, "| | sum of the medians | %.1f |\n", us(sum))
	_, err := io.WriteString(w, b.String())
	return err
}
