package bench

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/sockmux/sockmux/actors"
)

// Amount is how much of a workload to run: Count of its units (bytes,
// round trips, connections) or, when Count is 0, for Duration.
type Amount struct {
	Count    int64
	Duration time.Duration
}

// Probe connects a measurement to its caller: a benchmark's timer, or a
// tuning run's progress line. Every field may be nil.
type Probe struct {
	// Start and Stop bracket the measured part (b.ResetTimer, b.StopTimer).
	Start, Stop func()
	// Done counts the units done so far (bytes, round trips, streams).
	Done *atomic.Int64
}

func (p Probe) start() {
	if p.Start != nil {
		p.Start()
	}
}

func (p Probe) stop() {
	if p.Stop != nil {
		p.Stop()
	}
}

func (p Probe) set(n int64) {
	if p.Done != nil {
		p.Done.Store(n)
	}
}

// MB is a megabyte, the unit of the throughput figures (as go test's MB/s).
const MB = 1e6

// MeasureBulk pushes bytes through a tunnel of sys to a Sink on streams
// connections at once (amount.Count bytes split between them, or for
// amount.Duration) and returns the throughput, every byte confirmed by the
// sink.
func MeasureBulk(workload string, sys System, o Options, streams int, amount Amount, p Probe) (Figure, error) {
	fig := Figure{Workload: workload, System: sys.Name, Unit: "MB/s", Higher: true}
	_, tun, done, err := sinkTunnel(sys, o)
	if err != nil {
		return fig, err
	}
	defer done()
	p.start()
	start := time.Now()
	var n int64
	if amount.Count > 0 {
		n, err = PushParallel(tun.Addr(), amount.Count, streams)
	} else {
		stop := make(chan struct{})
		t := time.AfterFunc(amount.Duration, func() { close(stop) })
		defer t.Stop()
		n, err = PushUntil(tun.Addr(), streams, stop, p.Done)
	}
	elapsed := time.Since(start)
	p.stop()
	if err != nil {
		return fig, fmt.Errorf("%s: %w", sys.Name, err)
	}
	fig.Value = float64(n) / elapsed.Seconds() / MB
	return fig, nil
}

// MeasureRoundTrips sends size-byte requests one at a time on one
// connection through a tunnel of sys to an Echo (amount.Count of them, or
// for amount.Duration), checks each answer, and returns the median round
// trip in microseconds, with the 99th percentile.
func MeasureRoundTrips(workload string, sys System, o Options, size int, amount Amount, p Probe) (Figure, error) {
	fig := Figure{Workload: workload, System: sys.Name, Unit: "p50-µs"}
	echo, err := NewEcho()
	if err != nil {
		return fig, err
	}
	defer echo.Close()
	tun, err := sys.New(echo.Addr(), o)
	if err != nil {
		return fig, err
	}
	defer tun.Close()
	n := int(amount.Count)
	var stop chan struct{}
	if n == 0 {
		n = 1 << 30
		stop = make(chan struct{})
		t := time.AfterFunc(amount.Duration, func() { close(stop) })
		defer t.Stop()
	}
	p.start()
	rtts, err := RoundTrips(tun.Addr(), n, size, stop, p.Done)
	p.stop()
	if err != nil {
		return fig, fmt.Errorf("%s: %w", sys.Name, err)
	}
	if len(rtts) == 0 {
		return fig, fmt.Errorf("%s: no round trip completed", sys.Name)
	}
	fig.Value = us(Percentile(rtts, 50))
	fig.Metrics = []Metric{{us(Percentile(rtts, 99)), "p99-µs"}}
	return fig, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// MeasureFirstResponse makes new connections through a tunnel of sys to an
// Echo, one at a time (amount.Count of them, or for amount.Duration and at
// least five), each sending a 64-byte request at once, and returns the
// median time from connecting to having the answer, in milliseconds, with
// the 90th percentile.
func MeasureFirstResponse(workload string, sys System, o Options, amount Amount, p Probe) (Figure, error) {
	fig := Figure{Workload: workload, System: sys.Name, Unit: "p50-ms"}
	echo, err := NewEcho()
	if err != nil {
		return fig, err
	}
	defer echo.Close()
	tun, err := sys.New(echo.Addr(), o)
	if err != nil {
		return fig, err
	}
	defer tun.Close()
	// One connection first, so that nothing done once per tunnel counts.
	if _, err := FirstResponse(tun.Addr(), 64); err != nil {
		return fig, fmt.Errorf("%s: %w", sys.Name, err)
	}
	var ds []time.Duration
	p.start()
	start := time.Now()
	for i := int64(0); ; i++ {
		if amount.Count > 0 && i >= amount.Count {
			break
		}
		if amount.Count == 0 && i >= 5 && time.Since(start) >= amount.Duration {
			break
		}
		d, err := FirstResponse(tun.Addr(), 64)
		if err != nil {
			p.stop()
			return fig, fmt.Errorf("%s: %w", sys.Name, err)
		}
		ds = append(ds, d)
		p.set(i + 1)
	}
	p.stop()
	fig.Value = ms(Percentile(ds, 50))
	fig.Metrics = []Metric{{ms(Percentile(ds, 90)), "p90-ms"}}
	return fig, nil
}

// IdleFigure is the figure of holding streams idle: both peers' resident
// memory per stream, with the heap and stacks apart.
func IdleFigure(workload, system string, r IdleResult) Figure {
	per := r.PerStream()
	return Figure{Workload: workload, System: system, Value: float64(per.RSS), Unit: "rss-B/stream",
		Metrics: []Metric{
			{float64(per.Heap), "heap-B/stream"},
			{float64(per.Stack), "stack-B/stream"},
			{ms(r.Open), "open-ms"},
		}}
}

// WANOptions is the emulated path of the WAN workloads: rtt round trip,
// rate bytes per second per connection.
func WANOptions(rtt time.Duration, rate int64) Options {
	return Options{Delay: rtt / 2, Rate: rate}
}

// MeasureWAN pushes on streams connections at once through a tunnel of
// sys whose carrier crosses o's emulated path, to a Sink. After warm (the
// windows growing), it measures at the sink what arrives (amount.Count
// bytes, or for amount.Duration) and returns that throughput, with its
// fraction of the link's rate (x-link). With memory set it also samples
// the live heap and stacks every 200 ms (collecting garbage first) and
// reports the peak growth over the idle tunnel, less the workload's own
// buffers (peak-MiB), and its fraction of sockmux's link budget
// (x-budget). Every byte sent is confirmed by the sink at the end.
func MeasureWAN(workload string, sys System, o Options, streams int, warm time.Duration, amount Amount, p Probe, memory bool) (Figure, error) {
	fig := Figure{Workload: workload, System: sys.Name, Unit: "MB/s", Higher: true}
	sink, tun, done, err := sinkTunnel(sys, o)
	if err != nil {
		return fig, err
	}
	defer done()
	var base Memory
	var peak *peakSampler
	if memory {
		base = MeasureMemory()
		peak = newPeakSampler(200 * time.Millisecond)
		defer peak.Stop()
	}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := PushUntil(tun.Addr(), streams, stop, nil)
		errc <- err
	}()
	finish := func() error {
		close(stop)
		return <-errc
	}
	got, elapsed, err := measureRun(sink, warm, amount, p, errc)
	if err != nil {
		return fig, fmt.Errorf("%s: %w", sys.Name, err)
	}

	if err := finish(); err != nil {
		return fig, fmt.Errorf("%s: %w", sys.Name, err)
	}
	fig.Value = float64(got) / elapsed.Seconds() / MB
	if o.Rate > 0 {
		fig.Metrics = append(fig.Metrics, Metric{fig.Value * MB / float64(o.Rate), "x-link"})
	}
	if memory {
		harness := int64(streams) * (BlockSize + sinkBuffer) // the clients' blocks, the sink's readers
		grew := float64(peak.Stop()-(base.Heap+base.Stack)-harness) / (1 << 20)
		fig.Metrics = append(fig.Metrics, Metric{grew, "peak-MiB"}, Metric{grew * (1 << 20) / actors.DefaultLinkBudget, "x-budget"})
	}
	return fig, nil
}

// peakSampler collects garbage and samples the live heap and the goroutine
// stacks every interval until stopped. (The runtime's own live-heap figure
// is as of the last collection, which may be long before: a multiplexer
// that allocates little collects rarely.)
type peakSampler struct {
	done chan struct{}
	peak chan int64
}

func newPeakSampler(every time.Duration) *peakSampler {
	s := &peakSampler{done: make(chan struct{}), peak: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-s.done:
				s.peak <- peak
				return
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, int64(ms.HeapAlloc+ms.StackInuse))
		}
	}()
	return s
}

// Stop ends the sampling and returns the peak; later calls return 0.
func (s *peakSampler) Stop() int64 {
	select {
	case <-s.done:
		return 0
	default:
	}
	close(s.done)
	return <-s.peak
}

// Series pushes one stream through a tunnel of sys whose carrier crosses
// o's path for dur and returns the throughput the sink saw in each
// interval, in MB/s: the window growing, on a chart.
func Series(sys System, o Options, dur, interval time.Duration) ([]float64, error) {
	sink, tun, done, err := sinkTunnel(sys, o)
	if err != nil {
		return nil, err
	}
	defer done()
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := PushUntil(tun.Addr(), 1, stop, nil)
		errc <- err
	}()
	var out []float64
	t := time.NewTicker(interval)
	defer t.Stop()
	last, lastT := int64(0), time.Now()
	for range int(dur / interval) {
		select {
		case now := <-t.C:
			r := sink.Received()
			out = append(out, float64(r-last)/now.Sub(lastT).Seconds()/MB)
			last, lastT = r, now
		case err := <-errc:
			return out, fmt.Errorf("%s: pushing ended early: %v", sys.Name, err)
		}
	}
	close(stop)
	if err := <-errc; err != nil {
		return out, fmt.Errorf("%s: %w", sys.Name, err)
	}
	return out, nil
}

// sinkTunnel starts a Sink and a tunnel of sys to it; done closes both.
func sinkTunnel(sys System, o Options) (*Sink, Tunnel, func(), error) {
	sink, err := NewSink()
	if err != nil {
		return nil, nil, nil, err
	}
	tun, err := sys.New(sink.Addr(), o)
	if err != nil {
		sink.Close()
		return nil, nil, nil, err
	}
	return sink, tun, func() {
		tun.Close()
		sink.Close()
	}, nil
}

// counter counts the bytes a workload delivers.
type counter interface {
	Received() int64
	Await(n int64) <-chan struct{}
}

// measureRun lets a running workload warm up for warm, then counts what rx
// receives until amount is reached, reporting progress to p; errc carries
// the workload's end, which before then is an error. It returns the bytes
// received and the time they took.
func measureRun(rx counter, warm time.Duration, amount Amount, p Probe, errc <-chan error) (int64, time.Duration, error) {
	select {
	case <-time.After(warm):
	case err := <-errc:
		return 0, 0, fmt.Errorf("the workload ended during the warm-up: %v", err)
	}
	r0 := rx.Received()
	p.start()
	t0 := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var reached <-chan struct{}
	var deadline <-chan time.Time
	if amount.Count > 0 {
		reached = rx.Await(r0 + amount.Count)
	} else {
		deadline = time.After(amount.Duration)
	}
	for {
		select {
		case <-reached:
		case <-deadline:
		case <-tick.C:
			p.set(rx.Received() - r0)
			continue
		case err := <-errc:
			p.stop()
			return 0, 0, fmt.Errorf("the workload ended early: %v", err)
		}
		p.stop()
		return rx.Received() - r0, time.Since(t0), nil
	}
}
