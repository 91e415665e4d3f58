package carriers

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/sockmux/sockmux/internal/acceptloop"
	"github.com/sockmux/sockmux/internal/preauth"
	"github.com/sockmux/sockmux/internal/ratelog"
)

// upgradeFunc turns an accepted TCP connection into a carrier: a TLS
// handshake, a WebSocket upgrade. It reads through e.Conn() (so the gate
// sees the first byte) and is done by ctx's deadline; an error leaves raw
// for the caller to close.
type upgradeFunc func(ctx context.Context, raw net.Conn, e *preauth.Entry) (net.Conn, error)

// upgradeListener accepts TCP connections and runs each one's upgrade in a
// goroutine of its own, so a slow or silent client does not hold up the
// others; Accept returns connections whose upgrade is done. A
// preauth.Gate bounds the upgrades pending, in total and per source: a
// silent connection is evicted for a new one when the gate is full, so
// silent connections cannot keep a real peer out. The TLS and WebSocket
// listeners are this with their own upgrade.
type upgradeListener struct {
	inner   net.Listener
	network string // "tls", "ws", "wss": in errors and the accept loop's log lines
	failMsg string // the warning a failed upgrade logs
	upgrade upgradeFunc
	log     *slog.Logger
	limit   *ratelog.Limiter // failed upgrades: a peer can repeat them at will
	gate    *preauth.Gate
	ctx     context.Context
	cancel  context.CancelFunc
	ready   chan net.Conn
	wg      sync.WaitGroup

	failed    chan struct{} // closed when the TCP listener fails
	acceptErr error
}

// newUpgradeListener serves ln, which it owns from now on.
func newUpgradeListener(ln net.Listener, network, failMsg string, up upgradeFunc, o *options) *upgradeListener {
	gc := o.preauth
	if gc.Timeout == 0 {
		gc.Timeout = DialTimeout
	}
	if gc.Logger == nil {
		gc.Logger = o.log
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &upgradeListener{
		inner: ln, network: network, failMsg: failMsg, upgrade: up, log: o.log, limit: ratelog.New(0), gate: preauth.New(gc),
		ctx: ctx, cancel: cancel, ready: make(chan net.Conn), failed: make(chan struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// acceptLoop ends only when the TCP listener is closed: any other error
// (out of descriptors, say) is waited out with acceptloop's backoff.
func (l *upgradeListener) acceptLoop() {
	defer l.wg.Done()
	acceptloop.Run(l.inner, acceptloop.Options{Log: l.log, Limit: l.limit, Attrs: []any{"accepting", l.network}, Done: l.ctx.Done()},
		func(raw net.Conn) {
			e, err := l.gate.Admit(raw)
			if err != nil {
				raw.Close() // the gate logs it
				return
			}
			tune(raw)
			l.wg.Add(1)
			go l.serve(raw, e)
		})
	if l.ctx.Err() == nil { // closed under us
		l.acceptErr = net.ErrClosed
		close(l.failed)
	}
}

// serve holds its gate slot until the connection has been handed to
// Accept, so that upgrades done but not yet taken count too.
func (l *upgradeListener) serve(raw net.Conn, e *preauth.Entry) {
	defer l.wg.Done()
	defer e.Done()
	ctx, cancel := context.WithTimeout(l.ctx, DialTimeout)
	defer cancel()
	c, err := l.upgrade(ctx, raw, e)
	if err != nil {
		raw.Close()
		if l.ctx.Err() == nil {
			if why := e.Err(); why != nil {
				err = fmt.Errorf("%w: %w", why, err)
			}
			l.limit.Warn(l.log, l.failMsg, "peer", raw.RemoteAddr().String(), "err", err)
		}
		return
	}
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// Accept returns the next connection whose upgrade succeeded; failed
// upgrades are logged at warn and dropped.
func (l *upgradeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.Addr(), Err: net.ErrClosed}
	case <-l.failed:
		return nil, l.acceptErr
	}
}

// Close stops accepting, ends the pending upgrades and waits for them.
func (l *upgradeListener) Close() error {
	if l.ctx.Err() != nil {
		return &net.OpError{Op: "close", Net: l.network, Addr: l.Addr(), Err: net.ErrClosed}
	}
	l.cancel()
	err := l.inner.Close()
	l.wg.Wait()
	l.gate.Close()
	return err
}

// Addr is the TCP address listened on.
func (l *upgradeListener) Addr() net.Addr { return l.inner.Addr() }
