package actors_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/testpair"
)

// peerHub is a node of its own, as a hub of a cluster none of whose edges
// holds the pool; it is shut down by the test (or, failing that, at
// cleanup).
func peerHub(t testing.TB) (*actors.Node, *testkit.Recorder) {
	t.Helper()
	log := testkit.NewRecorder()
	n, err := actors.NewNode(actors.Config{Logger: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, log
}

// shutdownWithin fails the test if n's Shutdown has not returned within a
// generous limit (it hangs, rather than being slow, when it fails).
func shutdownWithin(t testing.TB, n *actors.Node) {
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
	p := testpair.New(t, testpair.Config{}) // B's link reaches A: the other hub
	hub, _ := peerHub(t)
	addr := testkit.FreeAddr(t)
	bound, err := hub.SetPoolPeers(addr, "web", []actors.PoolPeer{{Hub: "other", Via: p.B, Target: namer(t, "other"), Members: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got := heldName(t, bound, 5); got != "other" {
		t.Fatalf("a connection to the pool reached %q, want the other hub's server", got)
	}
	shutdownWithin(t, hub)
}
