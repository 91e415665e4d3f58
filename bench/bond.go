package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/bench/netem"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// The bonding workloads: one link whose carriers leave from different
// source addresses of a netem.Net, each its own emulated path, as connect
// --bind-carrier makes them (carriers.WithLocalBinds); the far node
// listens inside the namespace, the near node's forwards and the targets
// are on the host's loopback.

// Bonded is a sockmux tunnel over a netem.Net: a far node serving on
// net.Far, a near node dialling one carrier from the source address of
// each of its paths, with a -L forward to each target.
type Bonded struct {
	far, near *actors.Node
	addrs     []string
}

// NewBonded builds a tunnel over the paths of n (indices into it, one
// carrier each) to targets, and returns once both nodes see the link up
// with all its carriers. Both nodes get cfg's Keepalive.
func NewBonded(n *netem.Net, paths []int, cfg actors.Config, targets ...string) (*Bonded, error) {
	discard := slog.New(slog.DiscardHandler)
	b := &Bonded{}
	far, err := actors.NewNode(actors.Config{Logger: discard, Keepalive: cfg.Keepalive})
	if err != nil {
		return nil, err
	}
	b.far = far
	var ln net.Listener
	if err := n.Do(func() (err error) {
		ln, err = carriers.Listen(net.JoinHostPort(n.Far().String(), "0"))
		return err
	}); err != nil {
		b.Close()
		return nil, err
	}
	far.Serve(ln)
	binds := make([]carriers.LocalBind, len(paths))
	for i, p := range paths {
		binds[i] = carriers.LocalBind{IP: n.Source(p)}
	}
	d, err := carriers.NewDialer("tcp://"+ln.Addr().String(), carriers.WithLocalBinds(binds))
	if err != nil {
		b.Close()
		return nil, err
	}
	var fwds []forward.Forward
	for _, t := range targets {
		fwds = append(fwds, forward.Forward{Bind: "127.0.0.1:0", Target: t})
	}
	near, err := actors.NewNode(actors.Config{Logger: discard, Keepalive: cfg.Keepalive, Carriers: len(paths), Forwards: fwds})
	if err != nil {
		b.Close()
		return nil, err
	}
	b.near = near
	near.Connect(&nsDialer{n: n, d: d})
	if err := settleLink(near, far, len(paths)); err != nil {
		b.Close()
		return nil, err
	}
	for _, a := range near.ForwardAddrs() {
		b.addrs = append(b.addrs, a.String())
	}
	return b, nil
}

// Addr is where clients connect to reach targets[i].
func (b *Bonded) Addr(i int) string { return b.addrs[i] }

// Near is the dialling node (see Striped.Near).
func (b *Bonded) Near() *actors.Node { return b.near }

// Close closes the near node, then the far one.
func (b *Bonded) Close() {
	if b.near != nil {
		b.near.Close()
	}
	if b.far != nil {
		b.far.Close()
	}
}

// nsDialer dials a carrier inside a netem.Net's namespace.
type nsDialer struct {
	n *netem.Net
	d carriers.Dialer
	// congestion, when set, is the TCP congestion control the carrier's
	// socket is switched to once dialled (SetCongestion).
	congestion string
}

func (d *nsDialer) Dial(ctx context.Context) (c net.Conn, err error) {
	err = d.n.Do(func() error {
		c, err = d.d.Dial(ctx)
		return err
	})
	if err == nil && d.congestion != "" {
		if err = SetCongestion(c, d.congestion); err != nil {
			c.Close()
		}
	}
	return c, err
}

func (d *nsDialer) String() string { return "netem:" + d.d.String() }

// MeasureBond pushes one stream through a Bonded over paths of n to a
// Sink for dur after warm, and returns its throughput in MB/s, every byte
// confirmed by the sink.
func MeasureBond(n *netem.Net, paths []int, warm, dur time.Duration) (float64, error) {
	sink, err := NewSink()
	if err != nil {
		return 0, err
	}
	defer sink.Close()
	tun, err := NewBonded(n, paths, actors.Config{}, sink.Addr())
	if err != nil {
		return 0, err
	}
	defer tun.Close()
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := PushUntil(tun.Addr(0), 1, stop, nil)
		errc <- err
	}()
	mbps, err := finishBulk(sink, warm, dur, stop, errc)
	if BondTrace != nil {
		st := tun.Near().Status()
		l, _ := upLink(tun.far)
		BondTrace("paths %v: %.2f MB/s; resent %d, stalls %d, credit stalls %d; bytes in at the far end per carrier %v", paths, mbps, st.Resent, st.CarrierStalls, st.CreditStalls, l.CarrierBytesIn)
	}
	return mbps, err
}

// BondTrace, when set, is told of each MeasureBond's sender counters.
var BondTrace func(format string, args ...any)

// MeasureBondTCP is MeasureBond's physical limit: one plain TCP stream
// from path's source address to a Sink on n.Far, no tunnel.
func MeasureBondTCP(n *netem.Net, path int, warm, dur time.Duration) (float64, error) {
	sink, c, err := acrossPath(n, path, newSinkOn)
	if err != nil {
		return 0, err
	}
	defer sink.Close()
	defer c.Close()
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := pushConn(c, -1, stop, nil)
		errc <- err
	}()
	return finishBulk(sink, warm, dur, stop, errc)
}

// acrossPath starts a server on n.Far with start and dials it from path's
// source address over one plain TCP connection, no tunnel. The caller
// closes both.
func acrossPath[S interface{ Close() }](n *netem.Net, path int, start func(net.Listener) S) (srv S, c net.Conn, err error) {
	ln, err := n.Listen("tcp", net.JoinHostPort(n.Far().String(), "0"))
	if err != nil {
		return srv, nil, err
	}
	srv = start(ln)
	if c, err = n.Dial(context.Background(), "tcp", n.Source(path), ln.Addr().String()); err != nil {
		srv.Close()
		return srv, nil, err
	}
	return srv, c, nil
}

// finishBulk measures a bulk stream into sink (see measureRun), then
// stops it and waits for its end.
func finishBulk(sink *Sink, warm, dur time.Duration, stop chan struct{}, errc chan error) (float64, error) {
	got, elapsed, err := measureRun(sink, warm, Amount{Duration: dur}, Probe{}, errc)
	close(stop)
	if err != nil {
		return 0, err
	}
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(got) / elapsed.Seconds() / MB, nil
}

// BondLatency is a request/response stream's round trips beside a bulk
// stream on the same link.
type BondLatency struct {
	P50, P90 time.Duration
	// Trips is how many round trips were timed; BulkMBps is the bulk
	// stream's throughput meanwhile.
	Trips    int
	BulkMBps float64
}

// MeasureBondLatency times size-byte requests and their answers, one at a
// time, through a Bonded over paths of n to an Echo for dur, after warm,
// while (bulk) one stream pushes to a Sink through the same link.
func MeasureBondLatency(n *netem.Net, paths []int, size int, bulk bool, warm, dur time.Duration) (BondLatency, error) {
	var res BondLatency
	sink, err := NewSink()
	if err != nil {
		return res, err
	}
	defer sink.Close()
	echo, err := NewEcho()
	if err != nil {
		return res, err
	}
	defer echo.Close()
	tun, err := NewBonded(n, paths, actors.Config{}, sink.Addr(), echo.Addr())
	if err != nil {
		return res, err
	}
	defer tun.Close()
	stop := make(chan struct{})
	var errc chan error // stays nil without bulk: never ready
	if bulk {
		errc = make(chan error, 1)
		go func() {
			_, err := PushUntil(tun.Addr(0), 1, stop, nil)
			errc <- err
		}()
		defer func() { <-errc }()
	}
	select {
	case <-time.After(warm):
	case err := <-errc:
		close(stop)
		return res, fmt.Errorf("the bulk stream ended during the warm-up: %v", err)
	}
	r0, t0 := sink.Received(), time.Now()
	timer := time.AfterFunc(dur, func() { close(stop) })
	defer timer.Stop()
	rtts, err := RoundTrips(tun.Addr(1), 1<<30, size, stop, nil)
	if err != nil {
		return res, err
	}
	if BondTrace != nil {
		a, _ := upLink(tun.near)
		f, _ := upLink(tun.far)
		BondTrace("near carriers %+v; far carriers %+v", a.PerCarrier, f.PerCarrier)
	}
	res.BulkMBps = float64(sink.Received()-r0) / time.Since(t0).Seconds() / MB
	res.Trips = len(rtts)
	res.P50, res.P90 = Percentile(rtts, 50), Percentile(rtts, 90)
	return res, nil
}

// MeasurePathRTT times size-byte requests and their answers, one at a
// time for dur, over one plain TCP connection (no tunnel) from path's
// source address to an echo on n.Far: the path's round trip as an
// application sees it, the emulator's own cost included. It returns
// their median.
func MeasurePathRTT(n *netem.Net, path, size int, dur time.Duration) (time.Duration, error) {
	echo, c, err := acrossPath(n, path, newEchoOn)
	if err != nil {
		return 0, err
	}
	defer echo.Close()
	defer c.Close()
	stop := make(chan struct{})
	timer := time.AfterFunc(dur, func() { close(stop) })
	defer timer.Stop()
	rtts, err := roundTripsOn(c, 1<<30, size, stop, nil)
	if err != nil {
		return 0, err
	}
	return Percentile(rtts, 50), nil
}

// BondCut is what happened to a checksummed transfer over a Bonded when
// one path was cut in the middle of it and restored.
type BondCut struct {
	// Dropped is the time from the cut until the near node had given up
	// the carrier on the cut path; Back, from the restore until it had a
	// carrier there again; Total, the whole transfer.
	Dropped, Back, Total time.Duration
	// MBps is the transfer's rate (each byte there and back).
	MBps float64
}

// MeasureBondCut echoes size bytes, checksummed, through a Bonded over
// paths of n, whose nodes PING every keepalive (a carrier silent for
// three is dropped); after cutAt it cuts path cut (a black hole), waits until the
// near node has dropped that carrier, restores the path after cutFor and
// waits until the carrier is back. It fails if the echo came back
// different or short, or the carrier did not come back within limit.
func MeasureBondCut(n *netem.Net, paths []int, keepalive time.Duration, cut int, size int, cutAt, cutFor, limit time.Duration) (BondCut, error) {
	var res BondCut
	echo, err := NewEcho()
	if err != nil {
		return res, err
	}
	defer echo.Close()
	tun, err := NewBonded(n, paths, actors.Config{Keepalive: keepalive}, echo.Addr())
	if err != nil {
		return res, err
	}
	defer tun.Close()
	defer n.Restore(cut)
	c, err := net.Dial("tcp", tun.Addr(0))
	if err != nil {
		return res, err
	}
	defer c.Close()
	start := time.Now()
	echoed := make(chan error, 1)
	go func() { echoed <- testkit.EchoCheck(c, 15, size) }()
	carriersAre := func(k int, within time.Duration) (time.Duration, error) {
		t0 := time.Now()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if l, ok := upLink(tun.Near()); ok && l.Carriers == k {
				return time.Since(t0), nil
			}
			if time.Since(t0) > within {
				return 0, fmt.Errorf("the near node did not have %d carriers within %v", k, within)
			}
			<-tick.C
		}
	}
	select {
	case err := <-echoed:
		return res, fmt.Errorf("the transfer ended (%v) before the cut: make it longer", err)
	case <-time.After(cutAt):
	}
	if err := n.Cut(cut); err != nil {
		return res, err
	}
	if res.Dropped, err = carriersAre(len(paths)-1, limit); err != nil {
		return res, err
	}
	time.Sleep(cutFor)
	if err := n.Restore(cut); err != nil {
		return res, err
	}
	if res.Back, err = carriersAre(len(paths), limit); err != nil {
		return res, err
	}
	if err := <-echoed; err != nil {
		return res, err
	}
	res.Total = time.Since(start)
	res.MBps = float64(size) / res.Total.Seconds() / MB
	return res, nil
}
