package cluster

import (
	"log/slog"
	"net"
	"slices"
	"testing"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestStaticHealthOverHubLinks: with a cluster key, a member whose
// control plane still answers but whose hub links are dead leaves the
// other members' lists after the failure window, as a dead hub does:
// health is judged over the hubs' keyed links, not the control plane.
func TestStaticHealthOverHubLinks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cut  func(door *testDoor, path *testkit.Proxy)
	}{
		// The node serving the hub links is gone: its links reset, its
		// port refuses.
		{"listener closed", func(door *testDoor, _ *testkit.Proxy) { door.node.Close() }},
		// The path to it swallows every byte, both ways, and takes new
		// connections that never get an answer: only the links' PINGs can
		// tell.
		{"blackholed", func(_ *testDoor, path *testkit.Proxy) { path.Pause() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := testKey(t)
			a, _ := startHub(t, key, testLogger(t))
			b, _ := startHub(t, key, testLogger(t), a)
			door := openTestDoor(t, key)
			path := testkit.NewProxy(t, door.addr)
			c := startLinked(t, key, testLogger(t), path.Addr(), b)
			for _, m := range []*Member{a, b, c} {
				waitHubs(t, m, a, b, c)
			}

			tc.cut(door, path)
			for _, m := range []*Member{a, b} {
				waitHubs(t, m, a, b)
			}
			// c's control plane answers all along: c still counts a and b,
			// whose links and probes it has.
			if hubs := c.Hubs(); !slices.Contains(hubs, a.ID()) || !slices.Contains(hubs, b.ID()) {
				t.Errorf("c counts hubs %v, want a and b among them", hubs)
			}
		})
	}
}

// TestStaticDeadHubLinkStaysOut: a member whose control plane answers
// but whose hub-link address takes connections and never answers is
// never counted: its probes fail for its link, not its answers.
func TestStaticDeadHubLinkStaysOut(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	rec := testkit.NewRecorder()
	a, _ := startHub(t, key, slog.New(rec))
	door := openTestDoor(t, key)
	path := testkit.NewProxy(t, door.addr)
	path.Pause()
	d := startLinked(t, key, testLogger(t), path.Addr(), a)
	rec.Wait(t, waitLimit, "a's probes of d failing for its link", func(r testkit.Record) bool {
		n, _ := r.Attrs["probes"].(int64)
		return r.Msg == "cluster: probe failed" && r.Attrs["member"] == d.ID() && r.Attrs["reason"] == "hub link down" && n >= DefaultProbeFailures
	})
	if hubs := a.Hubs(); len(hubs) != 1 || hubs[0] != a.ID() {
		t.Errorf("a counts hubs %v, want only itself", hubs)
	}
}

// TestStaticHubLinkListenerClosed: a member whose hub-link listener
// (ServeHubLinks) closes while its node stays up, keeping the links it
// accepted up, withdraws at once: its entries leave the other members'
// directories, and they count it out after their failure window, though
// its control plane answers and their links to it are up all along.
func TestStaticHubLinkListenerClosed(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a, _ := startHub(t, key, testLogger(t))
	b, _ := startHub(t, key, testLogger(t), a)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	node, err := actors.NewNode(actors.Config{Logger: testLogger(t)})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	rec := testkit.NewRecorder()
	c := startLinked(t, key, slog.New(rec), ln.Addr().String(), b)
	if err := c.ServeHubLinks(node, ln); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Member{a, b, c} {
		waitHubs(t, m, a, b, c)
	}
	if err := c.Register(Entry{Bind: "tcp/*:8080"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Member{a, b} {
		waitFor(t, m, "c's entry", holds(Entry{Bind: "tcp/*:8080", Hub: c.ID()}))
	}

	id := c.memberID()
	ln.Close() // the node stays, and the links it took from a and b
	for _, m := range []*Member{a, b} {
		waitFor(t, m, "c's entry withdrawn", holds())
		waitHubs(t, m, a, b)
	}
	// Told it was counted out, it stays out: a fresh id would not be
	// counted either.
	rec.Wait(t, waitLimit, "c told it was counted out", func(r testkit.Record) bool {
		return r.Msg == "cluster: the other hubs counted this withdrawn hub out; it does not rejoin"
	})
	if now := c.memberID(); now != id {
		t.Errorf("the withdrawn hub rejoined: member id %s, was %s", now, id)
	}
}
