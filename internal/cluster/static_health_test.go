package cluster

import (
	"log/slog"
	"slices"
	"testing"

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
