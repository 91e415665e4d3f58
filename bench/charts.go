package bench

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// ChartsEnv names the environment variable that asks the benchmarks to
// write their charts, into the directory it holds (docs/bench, say).
const ChartsEnv = "SOCKMUX_BENCH_CHARTS"

// Chart file names, under the charts directory.
const (
	ThroughputChartFile = "throughput.svg"
	WANWindowChartFile  = "wan-window.svg"
)

// systemColor gives each system the same color on every chart.
func systemColor(name string) color.Color {
	switch name {
	case Relay.Name:
		return color.RGBA{0x99, 0x99, 0x99, 0xff}
	case Yamux.Name:
		return color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	case Smux.Name:
		return color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	case Sockmux.Name:
		return color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	}
	return color.RGBA{0x94, 0x67, 0xbd, 0xff}
}

// ThroughputChart writes an SVG of every throughput figure (MB/s) in figs,
// one bar per system side by side for each workload: loopback workloads
// in one panel, the emulated WAN's in another, each bar labelled with its
// figure. Repeated rounds should be folded first (Scoreboard.Medians).
func ThroughputChart(path string, figs []Figure) error {
	var loop, wan []Figure
	for _, f := range figs {
		if f.Unit != "MB/s" {
			continue
		}
		if strings.HasPrefix(f.Workload, "wan") {
			wan = append(wan, f)
		} else {
			loop = append(loop, f)
		}
	}
	var panels []*plot.Plot
	for _, p := range []struct {
		title string
		figs  []Figure
	}{{"loopback", loop}, {"emulated WAN", wan}} {
		if len(p.figs) == 0 {
			continue
		}
		pl, err := barPanel(p.title, p.figs)
		if err != nil {
			return err
		}
		panels = append(panels, pl)
	}
	if len(panels) == 0 {
		return fmt.Errorf("throughput chart: no throughput figures")
	}
	w, h := vg.Length(len(panels))*5*vg.Inch, 4*vg.Inch
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{panels}, tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	return writeCanvas(path, c)
}

// barPanel is one panel of grouped bars: workloads along x, systems side
// by side.
func barPanel(title string, figs []Figure) (*plot.Plot, error) {
	var workloads, systems []string
	seen := map[string]bool{}
	value := map[[2]string]float64{}
	for _, f := range figs {
		if !seen["w"+f.Workload] {
			seen["w"+f.Workload] = true
			workloads = append(workloads, f.Workload)
		}
		if !seen["s"+f.System] {
			seen["s"+f.System] = true
			systems = append(systems, f.System)
		}
		value[[2]string{f.Workload, f.System}] = f.Value
	}
	p := plot.New()
	p.Title.Text = "throughput, " + title
	p.Y.Label.Text = "MB/s (higher is better)"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	width := vg.Points(18)
	if n := len(systems) * len(workloads); n > 12 {
		width = vg.Points(10)
	}
	for i, s := range systems {
		vals := make(plotter.Values, len(workloads))
		xys := make(plotter.XYs, len(workloads))
		labels := make([]string, len(workloads))
		for j, w := range workloads {
			vals[j] = value[[2]string{w, s}]
			xys[j] = plotter.XY{X: float64(j), Y: vals[j]}
			labels[j] = ""
			if vals[j] > 0 {
				labels[j] = fmt.Sprintf("%.0f", vals[j])
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, err
		}
		bars.LineStyle.Width = 0
		bars.Color = systemColor(s)
		bars.Offset = (vg.Length(i) - vg.Length(len(systems)-1)/2) * width
		p.Add(bars)
		p.Legend.Add(s, bars)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, err
		}
		for k := range lb.TextStyle {
			lb.TextStyle[k].Font.Size = vg.Points(7)
			lb.TextStyle[k].XAlign = draw.XCenter
		}
		lb.Offset = vg.Point{X: bars.Offset, Y: vg.Points(2)}
		p.Add(lb)
	}
	p.NominalX(workloads...)
	// Room above the tallest bar for its label and the legend.
	p.Y.Max *= 1.5
	return p, nil
}

// SeriesChart writes an SVG of throughput over time, one line per system
// (series in MB/s, one value per interval, in the order of names), with
// the link's rate (MB/s, 0 for none) as a dashed line.
func SeriesChart(path, title string, names []string, series map[string][]float64, interval time.Duration, linkMBps float64) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since the stream opened"
	p.Y.Label.Text = "MB/s at the receiver, per " + interval.String()
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	var end float64
	for _, name := range names {
		vs := series[name]
		xys := make(plotter.XYs, len(vs))
		for i, v := range vs {
			xys[i] = plotter.XY{X: float64(i+1) * interval.Seconds(), Y: v}
		}
		end = max(end, float64(len(vs))*interval.Seconds())
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.Color = systemColor(name)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(name, l)
	}
	if linkMBps > 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: linkMBps}, {X: end, Y: linkMBps}})
		if err != nil {
			return err
		}
		l.Color = color.Black
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add("link rate", l)
	}
	p.Y.Max = max(p.Y.Max, linkMBps) * 1.45 // the legend above the lines
	c := vgsvg.New(7*vg.Inch, 4*vg.Inch)
	p.Draw(draw.New(c))
	return writeCanvas(path, c)
}

func writeCanvas(path string, c *vgsvg.Canvas) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WANWindowChart measures one stream's throughput over time on the
// emulated WAN (rtt, rate) through each of systems, sampled every 100 ms
// for dur, and writes the chart to path.
func WANWindowChart(path string, systems []System, rtt time.Duration, rate int64, dur time.Duration) error {
	series := map[string][]float64{}
	var names []string
	for _, sys := range systems {
		s, err := Series(sys, WANOptions(rtt, rate), dur, 100*time.Millisecond)
		if err != nil {
			return err
		}
		names = append(names, sys.Name)
		series[sys.Name] = s
	}
	title := fmt.Sprintf("one stream, %v RTT, %g Gbit/s link, default settings", rtt, float64(rate)*8/1e9)
	return SeriesChart(path, title, names, series, 100*time.Millisecond, float64(rate)/MB)
}
