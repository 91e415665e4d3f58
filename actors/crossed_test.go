package actors

import (
	"bufio"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// TestGoAwayCrossesFailedWrite: a peer says GOAWAY (shutting down) and
// closes while the node is writing to it; the node's write fails (EPIPE)
// before it has read the GOAWAY. The link still ends in order, for the
// peer's reason: the carrier reads out what the peer sent before it is
// reported down, instead of losing the GOAWAY and taking the end for a
// failure ("sockmux stdio" exited 1 on "broken pipe" when its dialler
// closed).
func TestGoAwayCrossesFailedWrite(t *testing.T) {
	testkit.CheckLeaks(t)
	node, err := NewNode(Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	served := make(chan *crossedConn, 1)
	ended := make(chan (<-chan error), 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(served)
			return
		}
		cc := newCrossedConn(c)
		served <- cc
		ended <- node.ServeConn(cc)
	}()
	p := wirepeer.Connect(t, ln.Addr().String(), wirepeer.Options{})
	cc := <-served
	if cc == nil {
		t.Fatal("no connection accepted")
	}
	// From now on the node's writes fail, as into a connection the peer
	// has closed, and the GOAWAY is read only after one of them has.
	cc.armed.Store(true)
	frames := p.Append(nil, engine.TypePing, 0, wirepeer.PingPayload(1)) // its PONG is a write
	frames = p.Append(frames, engine.TypeGoAway, 0, wirepeer.ReasonPayload(engine.CodeShutdown, "shutting down"))
	if err := p.Write(frames); err != nil {
		t.Fatal(err)
	}
	p.Close()
	select {
	case err := <-<-ended:
		if err != nil {
			t.Fatalf("the link ended with %v; want an orderly end, the peer's GOAWAY", err)
		}
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("the link did not end")
	}
	select {
	case <-cc.failed:
	default:
		t.Fatal("no write of the node failed: the case was not played")
	}
}

// crossedConn is the node's end of a carrier whose peer closes while the
// node writes: once armed, every Write fails with EPIPE, and a GOAWAY
// from the peer is handed to the reader only after one has. It reads the
// peer's frames whole (none is sequenced) and hands them on.
type crossedConn struct {
	net.Conn
	br        *bufio.Reader
	pending   []byte // the frame being read, what is left of it
	armed     atomic.Bool
	failed    chan struct{} // closed by the first Write once armed
	closed    chan struct{}
	failOnce  sync.Once
	closeOnce sync.Once
}

func newCrossedConn(c net.Conn) *crossedConn {
	return &crossedConn{Conn: c, br: bufio.NewReader(c), failed: make(chan struct{}), closed: make(chan struct{})}
}

func (c *crossedConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		f, err := wirepeer.ReadFrame(c.br, false, engine.DefaultMaxPayload)
		if err != nil {
			return 0, err
		}
		if f.Type == engine.TypeGoAway && c.armed.Load() {
			select {
			case <-c.failed:
			case <-c.closed:
				return 0, net.ErrClosed
			}
		}
		c.pending = wirepeer.AppendFrame(nil, f.Header, 0, f.Payload)
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *crossedConn) Write(p []byte) (int, error) {
	if c.armed.Load() {
		c.failOnce.Do(func() { close(c.failed) })
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(),
			Err: os.NewSyscallError("write", syscall.EPIPE)}
	}
	return c.Conn.Write(p)
}

func (c *crossedConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
