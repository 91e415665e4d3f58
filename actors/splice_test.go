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
