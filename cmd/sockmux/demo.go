package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
)

// demoResult is what a demo run did.
type demoResult struct {
	Streams   int
	Bytes     int64 // sent through the tunnel and echoed back, per direction
	Verified  int   // streams whose echo matched what was sent
	HalfClose bool  // the request/answer after a half-close came back whole
	Elapsed   time.Duration
	// CarrierBytes is, per carrier of the link, the bytes east striped
	// onto it, as west received them.
	CarrierBytes []uint64
}

func demoCmd(stdout io.Writer, logger func() (*slog.Logger, error)) *cobra.Command {
	var streams, mib, nCarriers int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run both peers in this process on loopback and push traffic through a forward",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			if streams < 1 || mib < 1 {
				return fmt.Errorf("%w: --streams and --mib must be at least 1", errUsage)
			}
			if nCarriers < 1 || nCarriers > sockmux.MaxCarriers {
				return fmt.Errorf("%w: --carriers must be 1..%d", errUsage, sockmux.MaxCarriers)
			}
			_, err = runDemo(cmd.Context(), stdout, log, streams, int64(mib)<<20, nCarriers)
			return err
		},
	}
	cmd.Flags().IntVar(&streams, "streams", 8, "concurrent streams")
	cmd.Flags().IntVar(&mib, "mib", 16, "MiB each stream sends (and gets back)")
	cmd.Flags().IntVar(&nCarriers, "carriers", 2, "carrier connections east stripes the link over")
	return cmd
}

// runDemo starts an echo server and two nodes linked on loopback: "west"
// listens for the link, "east" dials it. Each declares a -L forward, so
// traffic crosses the link both ways whichever side dialled.
func runDemo(ctx context.Context, out io.Writer, log *slog.Logger, streams int, size int64, nCarriers int) (demoResult, error) {
	var res demoResult
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer echo.Close()
	go serveEcho(echo)

	ups := make(chan struct{}, 4)
	onLink := func(ev sockmux.LinkEvent) {
		if ev.Up {
			ups <- struct{}{}
		}
	}
	fwd := forward.Forward{Bind: "127.0.0.1:0", Target: echo.Addr().String()}
	west, err := sockmux.NewPeer(&sockmux.PeerConfig{Logger: log.With("node", "west"), Forwards: []forward.Forward{fwd}, OnLink: onLink})
	if err != nil {
		return res, err
	}
	defer west.Close()
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		return res, err
	}
	west.Serve(ln)
	east, err := sockmux.NewPeer(&sockmux.PeerConfig{Logger: log.With("node", "east"), Forwards: []forward.Forward{fwd}, OnLink: onLink,
		Carriers: nCarriers})
	if err != nil {
		return res, err
	}
	defer east.Close()
	d, _ := carriers.NewDialer(ln.Addr().String())
	east.Connect(d)
	for range 2 {
		select {
		case <-ups:
		case <-time.After(10 * time.Second):
			return res, errors.New("demo: the link did not come up")
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	for deadline := time.Now().Add(10 * time.Second); linkCarriers(west) < nCarriers; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("demo: the link has %d carriers after 10 s, want %d", linkCarriers(west), nCarriers)
		}
	}
	fmt.Fprintf(out, "sockmux demo\n  link      west listens on %s, east dialled it over %d carriers\n", ln.Addr(), nCarriers)
	fmt.Fprintf(out, "  forwards  west -L %s -> (east dials) %s\n", west.ForwardAddrs()[0], fwd.Target)
	fmt.Fprintf(out, "            east -L %s -> (west dials) %s\n", east.ForwardAddrs()[0], fwd.Target)
	fmt.Fprintf(out, "  traffic   %d streams, each sends %d MiB through a forward and reads the echo\n", streams, size>>20)

	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range streams {
		addr := west.ForwardAddrs()[0]
		if i%2 == 1 {
			addr = east.ForwardAddrs()[0]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := echoThrough(addr.String(), uint64(i), size)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("stream %d: %w", i, err))
				return
			}
			res.Verified++
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Streams, res.Bytes = streams, int64(streams)*size
	res.HalfClose = halfCloseThrough(west.ForwardAddrs()[0].String()) == nil

	mbps := float64(res.Bytes) / res.Elapsed.Seconds() / 1e6
	fmt.Fprintf(out, "  result    %d/%d streams echoed intact (sha256), %d MiB each way in %v: %.0f MB/s each way\n",
		res.Verified, streams, res.Bytes>>20, res.Elapsed.Round(time.Millisecond), mbps)
	fmt.Fprintf(out, "  half-close request, shutdown(write), full answer: %v\n", okString(res.HalfClose))
	for _, l := range west.Status().Links {
		if l.Up {
			res.CarrierBytes = l.CarrierBytesIn
		}
	}
	fmt.Fprintf(out, "  striping  bytes east put on each carrier, as west got them: %v\n", res.CarrierBytes)
	ws, es := west.Stats(), east.Stats()
	fmt.Fprintf(out, "  west      streams opened %d, closed %d, bytes in %d, out %d\n", ws.StreamsOpened.Load(), ws.StreamsClosed.Load(), ws.BytesIn.Load(), ws.BytesOut.Load())
	fmt.Fprintf(out, "  east      streams opened %d, closed %d, bytes in %d, out %d\n", es.StreamsOpened.Load(), es.StreamsClosed.Load(), es.BytesIn.Load(), es.BytesOut.Load())
	if len(errs) > 0 || !res.HalfClose {
		return res, fmt.Errorf("demo failed: %w", errors.Join(errs...))
	}
	fmt.Fprintf(out, "  OK\n")
	return res, nil
}

// linkCarriers is the carriers of n's link that is up (0 for none).
func linkCarriers(n *sockmux.Peer) int {
	for _, l := range n.Status().Links {
		if l.Up {
			return l.Carriers
		}
	}
	return 0
}

func okString(ok bool) string {
	if ok {
		return "OK"
	}
	return "FAILED"
}

func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
			_ = c.(*net.TCPConn).CloseWrite()
		}()
	}
}

// echoThrough sends size bytes to the echo server through addr and checks
// the echo.
func echoThrough(addr string, seed uint64, size int64) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	block := make([]byte, 128<<10)
	for i := range block {
		block[i] = byte(uint64(i)*seed + seed>>3)
	}
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		for n := int64(0); n < size; {
			k := min(int64(len(block)), size-n)
			block[0]++
			sent.Write(block[:k])
			if _, err := c.Write(block[:k]); err != nil {
				werr <- err
				return
			}
			n += k
		}
		werr <- c.(*net.TCPConn).CloseWrite()
	}()
	got := sha256.New()
	n, err := io.Copy(got, c)
	if e := <-werr; e != nil {
		return e
	}
	if err != nil {
		return err
	}
	if n != size || string(got.Sum(nil)) != string(sent.Sum(nil)) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", size, n)
	}
	return nil
}

// halfCloseThrough writes a request, shuts the write side, and expects the
// echo of the request in full.
func halfCloseThrough(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	req := []byte("GET /index.html HTTP/1.0\r\n\r\n")
	if _, err := c.Write(req); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	ans, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(ans) != string(req) {
		return fmt.Errorf("answer %q", ans)
	}
	return nil
}
