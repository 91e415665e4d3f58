package carriers

// A QUIC stream as a net.Conn with the semantics of a TCP connection.
// CloseWrite is the stream's FIN: the peer reads what was written, then
// EOF, and may still write. Close also delivers what was written before
// it, in the background as a TCP socket's close does: closing the QUIC
// connection at once would drop whatever the peer has not yet
// acknowledged, and quic-go does not tell when it has. So each end
// acknowledges the other's end of stream itself: the first Read that
// returns io.EOF opens and ends a unidirectional stream, which tells the
// peer that everything it sent has been read. Close sends the FIN and
// returns; a goroutine then reads and drops what the peer still sends (so
// that a peer closing at the same time gets its own acknowledgement),
// waits for the peer's acknowledgement (up to quicCloseFlush), and only
// then closes the connection and lets go of its socket. A peer that is
// gone or does not read keeps that goroutine for quicCloseFlush, never
// the caller of Close (a gate evicting silent connections, say). A Read
// of a stream whose connection ended without its FIN is an error, never
// a clean EOF.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

const (
	// quicCloseFlush bounds how long a closed carrier waits for the peer
	// to acknowledge the end of what was written.
	quicCloseFlush = 2 * time.Second
	// quicLingerQuiet is how long it waits while no packet at all comes
	// from the peer (4 round trips, when that is longer): a peer that is
	// gone, or has everything and reads nothing, is not waited for.
	quicLingerQuiet = 250 * time.Millisecond
)

// quicConn is one QUIC carrier: the connection and its one stream.
type quicConn struct {
	qc *quic.Conn
	st *quic.Stream
	// release lets go of the UDP socket under qc (the dialler's own, or
	// its share of a listener's), once, after qc is closed.
	release func()

	rmu, wmu sync.Mutex // one Read, one Write at a time: quic-go allows no more
	shut     bool       // the FIN is sent (under wmu)
	// dmu orders the deadlines a caller sets before closing, which
	// Close's own follow.
	dmu      sync.Mutex
	closing  atomic.Bool
	eofAcked sync.Once // the peer's end of stream was acknowledged
}

func newQUICConn(qc *quic.Conn, st *quic.Stream) *quicConn {
	return &quicConn{qc: qc, st: st, release: func() {}}
}

// Read reads what the peer sent: io.EOF once the peer's FIN is read.
func (c *quicConn) Read(p []byte) (int, error) {
	if c.closing.Load() { // the lingering goroutine may hold rmu
		return 0, c.opErr("read", net.ErrClosed)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closing.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	n, err := c.read(p)
	if err != nil && err != io.EOF {
		err = c.ioErr("read", err)
	}
	return n, err
}

// read reads the stream and acknowledges the peer's end of it the first
// time it shows.
func (c *quicConn) read(p []byte) (int, error) {
	n, err := c.st.Read(p)
	if err == io.EOF {
		c.eofAcked.Do(func() {
			// Opening does not block: the peer allows one such stream.
			if us, err := c.qc.OpenUniStream(); err == nil {
				_ = us.Close()
			}
		})
	}
	return n, err
}

// Write writes p, waiting for QUIC's flow control and congestion window
// until the write deadline; a Write that times out has written the first
// n bytes and the connection goes on.
func (c *quicConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if c.shut {
		return 0, c.opErr("write", errWriteShut)
	}
	n, err := c.st.Write(p)
	if err != nil {
		err = c.ioErr("write", err)
	}
	return n, err
}

// errWriteShut is a Write after CloseWrite.
var errWriteShut = errors.New("write after CloseWrite")

// CloseWrite sends the FIN after what was written: the peer reads it all,
// then EOF. Reading goes on.
func (c *quicConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	return c.shutWrite()
}

func (c *quicConn) shutWrite() error {
	if c.shut {
		return nil
	}
	c.shut = true
	if err := c.st.Close(); err != nil {
		return c.ioErr("close", err)
	}
	return nil
}

// Close sends the FIN after what was written and returns; delivering it,
// then closing the connection and its socket, goes on in the background
// (see the top of this file). Blocked Reads and Writes return
// net.ErrClosed at once.
func (c *quicConn) Close() error {
	c.dmu.Lock()
	if c.closing.Swap(true) {
		c.dmu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	past := time.Unix(1, 0)
	_ = c.st.SetWriteDeadline(past) // a Write in progress returns
	_ = c.st.SetReadDeadline(past)  // and a Read
	c.dmu.Unlock()
	c.wmu.Lock()
	_ = c.shutWrite()
	c.wmu.Unlock()
	go func() {
		c.rmu.Lock() // a Read in progress has returned
		c.linger()
		c.rmu.Unlock()
		_ = c.qc.CloseWithError(quicCodeClosed, "")
		c.release()
	}()
	return nil
}

// linger waits, up to quicCloseFlush, for the peer's acknowledgement of
// our FIN, reading and dropping what the peer sends meanwhile. It ends
// sooner when the connection does, or when the peer goes quiet.
func (c *quicConn) linger() {
	ctx, cancel := context.WithTimeout(c.qc.Context(), quicCloseFlush)
	defer cancel()
	_ = c.st.SetReadDeadline(time.Now().Add(quicCloseFlush))
	acked := make(chan struct{})
	go func() {
		defer close(acked)
		defer c.st.SetReadDeadline(time.Unix(1, 0)) // the drain is done too
		go c.watchQuiet(ctx, cancel)
		if us, err := c.qc.AcceptUniStream(ctx); err == nil {
			us.CancelRead(0)
		}
	}()
	buf := make([]byte, 16<<10)
	for {
		if _, err := c.read(buf); err != nil {
			break
		}
	}
	<-acked
}

// watchQuiet cancels the linger once no packet has come from the peer
// for quicLingerQuiet (or 4 round trips); it ends with ctx.
func (c *quicConn) watchQuiet(ctx context.Context, cancel context.CancelFunc) {
	tick := time.NewTicker(quicLingerQuiet / 5)
	defer tick.Stop()
	last, since := c.qc.ConnectionStats().PacketsReceived, time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			st := c.qc.ConnectionStats()
			if st.PacketsReceived != last {
				last, since = st.PacketsReceived, now
			} else if now.Sub(since) >= max(quicLingerQuiet, 4*st.SmoothedRTT) {
				cancel()
				return
			}
		}
	}
}

// ioErr is what Read or Write says of err: net.ErrClosed once closing,
// os.ErrDeadlineExceeded for a deadline, otherwise quic-go's error (the
// peer's reset, the connection's end).
func (c *quicConn) ioErr(op string, err error) error {
	switch {
	case c.closing.Load():
		err = net.ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = os.ErrDeadlineExceeded
	}
	return c.opErr(op, err)
}

func (c *quicConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "quic", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// LocalAddr is the UDP socket's address.
func (c *quicConn) LocalAddr() net.Addr { return c.qc.LocalAddr() }

// RemoteAddr is the peer's UDP address: after a NAT rebinding, the new
// one.
func (c *quicConn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

func (c *quicConn) SetDeadline(t time.Time) error { return c.setDeadline(c.st.SetDeadline, t) }

func (c *quicConn) SetReadDeadline(t time.Time) error { return c.setDeadline(c.st.SetReadDeadline, t) }

func (c *quicConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(c.st.SetWriteDeadline, t)
}

// setDeadline sets a deadline unless the carrier is closing: Close's own
// deadlines stay.
func (c *quicConn) setDeadline(set func(time.Time) error, t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.closing.Load() {
		return nil
	}
	return set(t)
}

// ConnectionState is the TLS state of the QUIC handshake, so that a
// verified peer certificate counts as it does on tls://.
func (c *quicConn) ConnectionState() tls.ConnectionState {
	return c.qc.ConnectionState().TLS
}
