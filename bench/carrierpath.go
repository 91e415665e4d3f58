package bench

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/bench/netem"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
)

// The carrier-path workload: one stream through a sockmux link of one
// carrier of a given kind (tcp or quic) across one path of a netem.Net,
// so that the carrier's own loss recovery and congestion control meet
// the path's delay and loss end to end (the userspace Emulator ends TCP
// at the relay, and carries no UDP).

// MeasureCarrierPath pushes one stream for dur after warm through a link
// whose one carrier of kind ("tcp", "tls" or "quic"; "tcp-cubic" is tcp
// with its socket's congestion control set to CUBIC, where the host's
// default may be BBR) leaves from path's source address
// of n to a far node on n.Far, and returns its throughput in MB/s, every
// byte confirmed by the sink.
func MeasureCarrierPath(n *netem.Net, path int, kind string, warm, dur time.Duration) (_ float64, err error) {
	var listenOpts, dialOpts []carriers.Option
	congestion := ""
	switch kind {
	case "tcp":
	case "tcp-cubic":
		kind, congestion = "tcp", "cubic"
	case "tls", "quic":
		dir, lo, do, err := pinnedTLS()
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		listenOpts, dialOpts = lo, do
	default:
		return 0, errors.New("MeasureCarrierPath: no carrier kind " + kind)
	}
	sink, err := NewSink()
	if err != nil {
		return 0, err
	}
	defer sink.Close()
	discard := slog.New(slog.DiscardHandler)
	far, err := actors.NewNode(actors.Config{Logger: discard})
	if err != nil {
		return 0, err
	}
	defer far.Close()
	var ln net.Listener
	if err := n.Do(func() (err error) {
		ln, err = carriers.Listen(kind+"://"+net.JoinHostPort(n.Far().String(), "0"), listenOpts...)
		return err
	}); err != nil {
		return 0, err
	}
	far.Serve(ln)
	d, err := carriers.NewDialer(kind+"://"+ln.Addr().String(),
		append(dialOpts, carriers.WithLocalBinds([]carriers.LocalBind{{IP: n.Source(path)}}))...)
	if err != nil {
		return 0, err
	}
	near, err := actors.NewNode(actors.Config{Logger: discard, Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: sink.Addr()}}})
	if err != nil {
		return 0, err
	}
	defer near.Close()
	near.Connect(&nsDialer{n: n, d: d, congestion: congestion})
	if err := settleLink(near, far, 1); err != nil {
		return 0, err
	}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := PushUntil(near.ForwardAddrs()[0].String(), 1, stop, nil)
		errc <- err
	}()
	return finishBulk(sink, warm, dur, stop, errc)
}
