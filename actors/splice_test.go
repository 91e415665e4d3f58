package actors

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestSpliceAtHolder: a stream another node brings a hub for the address
// of one of its edges' -R (as another hub of a cluster does) is handed to
// the edge's link in process, not dialled: a checksummed megabyte passes
// both ways, the hub counts it spliced, and a reset at the edge's end
// reaches the stream's opener as a reset, not a clean end.
func TestSpliceAtHolder(t *testing.T) {
	echoPort, resetPort := testkit.FreeAddr(t), testkit.FreeAddr(t)
	resetter := testkit.Serve(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 1))
		c.(*net.TCPConn).SetLinger(0)
		c.Close() // RST
	})
	p := newTestPair(t, pairConfig{B: func(c *Config) {
		c.Remotes = []forward.Forward{{Bind: echoPort, Target: testkit.Echo(t)}, {Bind: resetPort, Target: resetter}}
	}})
	remoteListening(t, p.BLog, 2)
	other := p.AddEdge(t, nil) // the other hub's link to this one
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := other.Node.OpenLocal(ctx, echoPort)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) // hang guard
	if err := testkit.EchoCheck(c, 7, 1<<20); err != nil {
		t.Fatalf("through the splice: %v", err)
	}
	if n := p.A.Stats().Spliced.Load(); n != 1 {
		t.Errorf("the hub spliced %d streams, want 1", n)
	}

	r, err := other.Node.OpenLocal(ctx, resetPort)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("reading after the target's reset: %v, want a reset", err)
	}
	if n := p.A.Stats().Spliced.Load(); n != 2 {
		t.Errorf("the hub spliced %d streams, want 2", n)
	}
}

// TestSpliceBulkAndClose: 8 MiB each way (many times a window, so the
// opener's peer gets its credit back only as the edge's Stream takes what
// crossed the splice) arrive whole and in order with the FIN after them;
// and an opener that closes while its target still sends (a FIN, then a
// reset as more arrives) ends the target's connection.
func TestSpliceBulkAndClose(t *testing.T) {
	echoPort, floodPort := testkit.FreeAddr(t), testkit.FreeAddr(t)
	floodEnd := make(chan error, 1)
	flood := testkit.Serve(t, func(c net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				floodEnd <- err
				return
			}
		}
	})
	p := newTestPair(t, pairConfig{B: func(c *Config) {
		c.Remotes = []forward.Forward{{Bind: echoPort, Target: testkit.Echo(t)}, {Bind: floodPort, Target: flood}}
	}})
	remoteListening(t, p.BLog, 2)
	other := p.AddEdge(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, err := other.Node.OpenLocal(ctx, echoPort)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second)) // hang guard
	if err := testkit.EchoCheck(c, 11, 8<<20); err != nil {
		t.Fatalf("8 MiB through the splice: %v", err)
	}
	c.Close()

	f, err := other.Node.OpenLocal(ctx, floodPort)
	if err != nil {
		t.Fatal(err)
	}
	f.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(f, make([]byte, 1<<20)); err != nil {
		t.Fatalf("reading the flood: %v", err)
	}
	f.Close()
	select {
	case <-floodEnd:
	case <-ctx.Done():
		t.Fatal("the flood's server was never cut off")
	}
	if n := p.A.Stats().Spliced.Load(); n != 2 {
		t.Errorf("the hub spliced %d streams, want 2", n)
	}
}
