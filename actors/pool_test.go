package actors

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// namer is a server that says its name and then holds the connection open
// until the client closes it, so the stream stays open.
func namer(t testing.TB, name string) string {
	return testkit.Serve(t, func(c net.Conn) {
		c.Write([]byte(name))
		io.Copy(io.Discard, c)
	})
}

// heldName dials addr and reads the name of the server it reaches; the
// connection stays open until the test ends.
func heldName(t testing.TB, addr string, n int) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading the server's name through %s: %v", addr, err)
	}
	return string(b)
}

// poolEdges is a hub (the Pair's A) and two edges (B and one more) that
// both ask it for -R port under pool "web", each to its own named server.
func poolEdges(t testing.TB) (p *testPair, second *pairEdge, port string) {
	t.Helper()
	port = testkit.FreeAddr(t)
	pooled := func(name string) func(*Config) {
		target := namer(t, name)
		return func(c *Config) {
			c.Remotes = []forward.Forward{{Bind: port, Target: target}}
			c.Pool = "web"
		}
	}
	p = newTestPair(t, pairConfig{B: pooled("edge1")})
	remoteListening(t, p.BLog, 1)
	second = p.AddEdge(t, pooled("edge2"))
	remoteListening(t, second.Log, 1)
	return p, second, port
}

// TestPooledRemote: two links in one pool share the port; connections
// held open spread evenly (fewest open streams first), and when one
// member's link waits to resume, or ends, the other gets every new one.
func TestPooledRemote(t *testing.T) {
	p, second, port := poolEdges(t)
	count := map[string]int{}
	for range 20 {
		count[heldName(t, port, 5)]++
	}
	if count["edge1"] != 10 || count["edge2"] != 10 {
		t.Fatalf("20 held connections went %v, want 10 to each edge", count)
	}

	// The second edge's carrier is cut: the hub keeps its link for the
	// resume window, but sends it nothing new (and the edge cannot come
	// back: its proxy refuses).
	second.Proxy.Refuse(true)
	second.Proxy.Cut()
	p.ALog.Wait(t, 10*time.Second, "the hub to see the edge's carrier gone", func(r testkit.Record) bool {
		return r.Msg == "link lost its last carrier; waiting to resume it"
	})
	for i := range 5 {
		if got := heldName(t, port, 5); got != "edge1" {
			t.Fatalf("connection %d after the cut reached %q, want edge1 (the only live member)", i, got)
		}
	}
	// The first edge goes away for good; the second, let back in, resumes
	// and gets the next connection.
	p.B.Close()
	p.ALog.Wait(t, 10*time.Second, "the first edge's link to end", func(r testkit.Record) bool { return r.Msg == "link down" })
	second.Proxy.Refuse(false)
	second.Node.Redial()
	if got := heldName(t, port, 5); got != "edge2" {
		t.Fatalf("after the first edge left, a connection reached %q, want edge2", got)
	}
}

// TestPoolRefusals: a second link's BIND of a pooled port without the
// pool, or under another pool name, is refused and says why.
func TestPoolRefusals(t *testing.T) {
	cases := []struct {
		name, pool string
		want       error  // in the refusal's chain
		text       string // in its message
	}{
		{"no pool", "", nil, "address already in use"},
		{"other pool", "api", nil, `taken by pool "web"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _, port := poolEdges(t)
			e := p.AddEdge(t, func(c *Config) {
				c.Remotes = []forward.Forward{{Bind: port, Target: "127.0.0.1:9"}}
				c.Pool, c.ExitOnForwardFailure = tc.pool, true
			})
			select {
			case err := <-e.Node.Failed():
				if !errors.Is(err, errForwardRefused) || !strings.Contains(err.Error(), tc.text) {
					t.Fatalf("refusal %v, want ErrForwardRefused saying %q", err, tc.text)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the BIND was not refused")
			}
			// The pool is untouched.
			if got := heldName(t, port, 5); got != "edge1" && got != "edge2" {
				t.Fatalf("the pool's port reached %q", got)
			}
		})
	}
}

// TestPoolReleasedByLastMember: the pooled port stays while one member
// is left, and is free once the last one leaves.
func TestPoolReleasedByLastMember(t *testing.T) {
	p, second, port := poolEdges(t)
	second.Node.Close()
	if got := heldName(t, port, 5); got != "edge1" {
		t.Fatalf("with one member left the port reached %q", got)
	}
	p.B.Close()
	waitFor(t, "the pooled port to be released", func() bool {
		c, err := net.Dial("tcp", port)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
}

// TestRemoteBindAddr: with --remote-bind-addr, a -R for all addresses is
// bound on that host, and the asker is told the address bound.
func TestRemoteBindAddr(t *testing.T) {
	port := testkit.FreeAddr(t)
	_, portNum, _ := net.SplitHostPort(port)
	target := hello(t, "behind the hub")
	for _, bind := range []string{"0.0.0.0", "::"} {
		t.Run(bind, func(t *testing.T) {
			p := newTestPair(t, pairConfig{
				A: func(c *Config) { c.RemoteBindAddr = "127.0.0.11" },
				B: func(c *Config) {
					c.Remotes = []forward.Forward{{Bind: net.JoinHostPort(bind, portNum), Target: target}}
				},
			})
			r := p.BLog.Wait(t, 10*time.Second, "the -R to be bound", func(r testkit.Record) bool {
				return r.Msg == "reverse forward listening"
			})
			if want := "127.0.0.11:" + portNum; r.Attrs["remote"] != want {
				t.Fatalf("bound %v, want %s", r.Attrs["remote"], want)
			}
			if got := greeting(t, "127.0.0.11:"+portNum); got != "behind the hub" {
				t.Fatalf("127.0.0.11:%s reached %q", portNum, got)
			}
		})
	}
}
