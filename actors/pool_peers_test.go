package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// peerHub is a node of its own, as a hub of a cluster none of whose edges
// holds the pool; it is shut down by the test (or, failing that, at
// cleanup).
func peerHub(t testing.TB) (*Node, *testkit.Recorder) {
	t.Helper()
	log := testkit.NewRecorder()
	n, err := NewNode(Config{Logger: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, log
}

// shutdownWithin fails the test if n's Shutdown has not returned within a
// generous limit (it hangs, rather than being slow, when it fails).
func shutdownWithin(t testing.TB, n *Node) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- n.Shutdown(0) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown hung: a pool of other hubs' shares only kept it waiting")
	}
}

// TestShutdownWithOnlyPoolPeers: a node whose pool has only other hubs'
// shares, and no member of its own whose link's end would close it,
// shuts down: the pool's socket and accept loop end with the node.
func TestShutdownWithOnlyPoolPeers(t *testing.T) {
	p := newTestPair(t, pairConfig{}) // B's link reaches A: the other hub
	hub, _ := peerHub(t)
	addr := testkit.FreeAddr(t)
	bound, err := hub.SetPoolPeers(addr, "web", []PoolPeer{{Hub: "other", Via: p.B, Target: namer(t, "other"), Members: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got := heldName(t, bound, 5); got != "other" {
		t.Fatalf("a connection to the pool reached %q, want the other hub's server", got)
	}
	shutdownWithin(t, hub)
}

// pairPool is poolHub as a Pair (which checks for leaks): its A the hub,
// its B the edge.
func pairPool(t testing.TB, name string) (hub *Node, port string) {
	t.Helper()
	port = testkit.FreeAddr(t)
	target := namer(t, name)
	p := newTestPair(t, pairConfig{B: func(c *Config) {
		c.Remotes = []forward.Forward{{Bind: port, Target: target}}
		c.Pool = "web"
	}})
	remoteListening(t, p.BLog, 1)
	return p.A, port
}

// poolHub is a hub with one edge in pool "web", whose -R on port goes to
// a server that says name. It is made of plain nodes, not a Pair, so that
// a test may hold two of them beside a Pair (whose leak check would count
// a second Pair's goroutines); they are closed when the test ends.
func poolHub(t testing.TB, name string) (hub *Node, port, link string) {
	t.Helper()
	port = testkit.FreeAddr(t)
	target := namer(t, name)
	hub, err := NewNode(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hub.Serve(ln)
	log := testkit.NewRecorder()
	edge, err := NewNode(Config{Logger: slog.New(log), Pool: "web", Remotes: []forward.Forward{{Bind: port, Target: target}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { edge.Close() })
	d, err := carriers.NewDialer("tcp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	edge.Connect(d)
	remoteListening(t, log, 1)
	return hub, port, ln.Addr().String()
}

// linkTo is a node linked to hub (listening at link): a hub's way to
// another hub. It is closed when the test ends.
func linkTo(t testing.TB, link string) *Node {
	t.Helper()
	up := make(chan struct{}, 1)
	n, err := NewNode(Config{OnLink: func(ev LinkEvent) {
		if ev.Up {
			select {
			case up <- struct{}{}:
			default:
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	d, err := carriers.NewDialer("tcp://" + link)
	if err != nil {
		t.Fatal(err)
	}
	n.Connect(d)
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		t.Fatal("the link between hubs did not come up")
	}
	return n
}

// TestPoolSpreadsOverPeers: a hub holding one edge of a pool, with a share
// for another hub holding the other, spreads held connections evenly over
// both edges (fewest open streams for the weight first); the other hub
// hands those it is brought to its own edge in process (spliced), never
// back. A share weighing two edges gets twice the connections.
func TestPoolSpreadsOverPeers(t *testing.T) {
	h1, port1 := pairPool(t, "edge1") // checks for leaks
	h2, port2, link2 := poolHub(t, "edge2")
	via := linkTo(t, link2) // h1's link to h2
	if _, err := h1.SetPoolPeers(port1, "web", []PoolPeer{{Hub: "h2", Via: via, Target: port2, Members: 1}}); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for range 20 {
		count[heldName(t, port1, 5)]++
	}
	if count["edge1"] != 10 || count["edge2"] != 10 {
		t.Fatalf("20 held connections went %v, want 10 to each edge", count)
	}
	if n := h2.Stats().Spliced.Load(); n != 10 {
		t.Errorf("the other hub spliced %d streams, want the 10 it was brought", n)
	}

	// The same share, now weighing two: 30 more even the loads out for
	// the weights, the share's open streams twice the edge's (within a
	// round of the tie-break).
	if _, err := h1.SetPoolPeers(port1, "web", []PoolPeer{{Hub: "h2", Via: via, Target: port2, Members: 2}}); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		count[heldName(t, port1, 5)]++
	}
	if e1, e2 := count["edge1"], count["edge2"]; e1+e2 != 50 || e2 < 2*e1-2 || e2 > 2*e1+2 {
		t.Fatalf("50 held connections went %v, want the share of two to hold twice the hub's own edge's", count)
	}
}
