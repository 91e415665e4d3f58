package main

// connect -W host:port: this process's stdin and stdout as one stream that
// the peer dials to host:port, as ssh -W does, so that
//
//	ssh -o ProxyCommand='sockmux connect -W %h:%p hub:9000' host
//
// reaches host through the hub.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
)

// errStreamReset is a -W stream cut short: the exit is non-zero, so the
// program on the other end of stdout can tell it from a clean end.
var errStreamReset = errors.New("the stream was reset")

// stdioStream is stdin and stdout as the local end of a -W stream. It is
// an sockmux.Resetter: the stream actor says here whether it ended cleanly.
type stdioStream struct {
	net.Conn
	once  sync.Once
	ended chan struct{} // closed when the stream let go of it
	reset bool          // set before ended is closed
}

func newStdioStream() *stdioStream {
	return &stdioStream{Conn: carriers.Stdio(os.Stdin, os.Stdout), ended: make(chan struct{})}
}

// CloseWrite ends stdout: the far end of the stream sent FIN.
func (s *stdioStream) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (s *stdioStream) end(reset bool) {
	s.once.Do(func() {
		s.reset = reset
		s.Conn.Close()
		close(s.ended)
	})
}

// Close is the stream's clean end.
func (s *stdioStream) Close() error { s.end(false); return nil }

// Reset is the stream cut short.
func (s *stdioStream) Reset() { s.end(true) }

var _ sockmux.Resetter = (*stdioStream)(nil)

// stdioForward runs -W: a node with one link to ds (failing over between
// them in turn), and one stream over it to target carrying stdin and
// stdout. It returns when the stream ends: nil on a clean end; the reason
// when the open is refused, the link fails, or the stream is reset.
func stdioForward(ctx context.Context, log *slog.Logger, cfg sockmux.PeerConfig, ds []carriers.Dialer, target string, cleanup func()) error {
	if cleanup != nil {
		defer cleanup()
	}
	// The stream waits for the first link as long as connect would.
	cfg.OpenTimeout = max(cfg.OpenTimeout, cfg.ConnectTimeout)
	node, err := sockmux.NewPeer(&cfg)
	if err != nil {
		return err
	}
	defer node.Shutdown(0)
	connectTo(node, ds)
	conn := newStdioStream()
	opened := make(chan error, 1)
	go func() { opened <- node.OpenStream(ctx, conn, target) }()
	select {
	case err := <-opened:
		if f := failureOf(ctx); f != nil {
			err = f // the open failed because a relay did
		}
		if err != nil {
			return fmt.Errorf("-W %s: %w", target, err)
		}
	case err := <-node.Failed():
		conn.Close()
		return fmt.Errorf("-W %s: %w", target, err)
	}
	log.Debug("-W stream open", "target", target)
	select {
	case <-conn.ended:
	case err := <-node.Failed():
		return fmt.Errorf("-W %s: %w", target, err)
	case <-ctx.Done():
		return failureOf(ctx)
	}
	if conn.reset {
		return fmt.Errorf("-W %s: %w", target, errStreamReset)
	}
	return nil
}

// checkStdioForward refuses what -W cannot be combined with: like ssh's
// -W, it carries stdin and stdout and nothing else.
func checkStdioForward(o *options, h *habits) error {
	if len(o.forwards)+len(o.remotes)+len(o.dynamic) > 0 || h.background {
		return flagErr("forward-stdio", fmt.Errorf("%w: -W carries stdin and stdout only: it takes no -L, -R, -D or -f", errUsage))
	}
	if _, _, err := net.SplitHostPort(o.stdioTarget); err != nil {
		return flagErr("forward-stdio", fmt.Errorf("%w: -W %q: want host:port", errUsage, o.stdioTarget))
	}
	return nil
}
