package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
)

// Metric is one figure with its unit.
type Metric struct {
	Value float64
	Unit  string
}

// Figure is one system's result in one workload.
type Figure struct {
	Workload string
	System   string
	// Value is the headline figure in Unit; Higher tells whether more is
	// better (throughput) or less (latency, memory).
	Value  float64
	Unit   string
	Higher bool
	// Metrics are further figures: percentiles, parts of the memory, the
	// ratio to a workload's own reference (x-link, x-direct, x-budget).
	Metrics []Metric
	// XRelay and XMux are Value divided by the relay chain's and by the
	// better of yamux's and smux's, measured in the same run (0 when that
	// run had none). Above 1 is better for throughput, below 1 for the
	// rest.
	XRelay, XMux float64
}

// Metric returns the figure's metric with unit, and whether it has one.
func (f Figure) Metric(unit string) (float64, bool) {
	for _, m := range f.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

// Scoreboard keeps the figures of a run and gives each new one its ratios
// to the latest baselines of the same workload.
type Scoreboard struct {
	mu   sync.Mutex
	last map[string]map[string]Figure // workload → system → latest
	all  []Figure
}

// Add fills in f's ratios from the latest relay, yamux and smux figures of
// its workload, records it and returns it.
func (s *Scoreboard) Add(f Figure) Figure {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]map[string]Figure{}
	}
	w := s.last[f.Workload]
	if w == nil {
		w = map[string]Figure{}
		s.last[f.Workload] = w
	}
	w[f.System] = f
	f.XRelay, f.XMux = ratios(f, w)
	w[f.System] = f
	s.all = append(s.all, f)
	return f
}

// Update replaces the figure last added for f's workload and system (a
// benchmark's final run replacing its trial runs), or adds f when there is
// none, and returns it with its ratios.
func (s *Scoreboard) Update(f Figure) Figure {
	s.mu.Lock()
	for i := len(s.all) - 1; i >= 0; i-- {
		if s.all[i].Workload == f.Workload && s.all[i].System == f.System {
			s.all = append(s.all[:i], s.all[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	return s.Add(f)
}

// Latest is the latest figure of system in workload.
func (s *Scoreboard) Latest(workload, system string) (Figure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.last[workload][system]
	return f, ok
}

func ratios(f Figure, w map[string]Figure) (xRelay, xMux float64) {
	if r, ok := w[Relay.Name]; ok && r.Value > 0 {
		xRelay = f.Value / r.Value
	}
	y, yok := w[Yamux.Name]
	m, mok := w[Smux.Name]
	var best float64
	switch {
	case yok && mok:
		best = y.Value
		if f.Higher == (m.Value > y.Value) {
			best = m.Value
		}
	case yok:
		best = y.Value
	case mok:
		best = m.Value
	}
	if best > 0 {
		xMux = f.Value / best
	}
	return
}

// Figures are every figure added, in order.
func (s *Scoreboard) Figures() []Figure {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.all)
}

// Medians folds repeated rounds: one figure per workload and system, in
// the order first seen, each value and metric the median of its rounds,
// and the ratios recomputed from the medians.
func (s *Scoreboard) Medians() []Figure {
	type key struct{ w, s string }
	var order []key
	rounds := map[key][]Figure{}
	for _, f := range s.Figures() {
		k := key{f.Workload, f.System}
		if _, ok := rounds[k]; !ok {
			order = append(order, k)
		}
		rounds[k] = append(rounds[k], f)
	}
	var out Scoreboard
	for _, k := range order {
		fs := rounds[k]
		m := fs[0]
		m.Value = median(fs, func(f Figure) float64 { return f.Value })
		m.Metrics = slices.Clone(m.Metrics)
		for i, mt := range m.Metrics {
			m.Metrics[i].Value = median(fs, func(f Figure) float64 { v, _ := f.Metric(mt.Unit); return v })
		}
		out.Add(m)
	}
	// Ratios against baselines that came later in the order (none do in
	// the benchmarks, which run baselines first) are filled in here.
	var fixed []Figure
	for _, f := range out.all {
		f.XRelay, f.XMux = ratios(f, out.last[f.Workload])
		fixed = append(fixed, f)
	}
	return fixed
}

func median(fs []Figure, v func(Figure) float64) float64 {
	xs := make([]float64, len(fs))
	for i, f := range fs {
		xs[i] = v(f)
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// WriteTable prints figures as an aligned table: workload, system, the
// headline figure, its ratios and the other metrics.
func WriteTable(w io.Writer, figs []Figure) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tsystem\tfigure\tx-relay\tx-mux\tmore")
	// Grouped by workload, in the order the workloads first appear.
	rank := map[string]int{}
	for _, f := range figs {
		if _, ok := rank[f.Workload]; !ok {
			rank[f.Workload] = len(rank)
		}
	}
	for _, f := range slices.SortedStableFunc(slices.Values(figs), func(a, b Figure) int { return cmp.Compare(rank[a.Workload], rank[b.Workload]) }) {
		var more []string
		for _, m := range f.Metrics {
			more = append(more, fmt.Sprintf("%s %s", num(m.Value), m.Unit))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\n", f.Workload, f.System, num(f.Value), f.Unit,
			ratio(f.XRelay), ratio(f.XMux), strings.Join(more, ", "))
	}
	return tw.Flush()
}

func ratio(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

// num formats a figure with three significant digits or so.
func num(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 10:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
