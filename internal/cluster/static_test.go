package cluster

import (
	"crypto/rand"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/internal/testkit"
)

// testKey is a fresh cluster key.
func testKey(t testing.TB) []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// startStatic starts a member of the static provider with key, probing
// every 200 ms, seeded with the members given, with no hub links: judged
// by the control plane alone.
func startStatic(t testing.TB, key []byte, log *slog.Logger, seeds ...*Member) *Member {
	t.Helper()
	return startLinked(t, key, log, "", seeds...)
}

// startLinked is startStatic for a hub whose links are taken at link
// (Config.Link; "" for none).
func startLinked(t testing.TB, key []byte, log *slog.Logger, link string, seeds ...*Member) *Member {
	t.Helper()
	cfg := Config{Provider: "static", Key: key, Probe: 200 * time.Millisecond, Logger: log, Link: link}
	for _, s := range seeds {
		cfg.Seeds = append(cfg.Seeds, s.ID())
	}
	return start(t, cfg)
}

// testDoor is a hub's listener for the other hubs' links, keyed from the
// cluster's key as cmd/sockmux's hubDoor is, served by a node of its own.
type testDoor struct {
	node *actors.Node
	addr string
}

// openTestDoor serves the links of cluster "test" with key on loopback;
// the node is closed at cleanup (before the members: cleanups registered
// later run first).
func openTestDoor(t testing.TB, key []byte) *testDoor {
	t.Helper()
	hk, err := HubLinkKey(key, "test")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := actors.NewNode(actors.Config{Logger: testLogger(t)})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if err := n.ServeKeyed(ln, hk); err != nil {
		ln.Close()
		n.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &testDoor{node: n, addr: ln.Addr().String()}
}

// startHub starts a member whose hub links are served at a door of its
// own, seeded with the members given.
func startHub(t testing.TB, key []byte, log *slog.Logger, seeds ...*Member) (*Member, *testDoor) {
	t.Helper()
	d := openTestDoor(t, key)
	return startLinked(t, key, log, d.addr, seeds...), d
}

// TestStaticMembership: members seeded in a chain find each other, a
// killed member leaves with its entries, and a late one gets the
// directory, all over mutual TLS and with their hub links up.
func TestStaticMembership(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a, _ := startHub(t, key, nil)
	b, _ := startHub(t, key, nil, a)
	c, cDoor := startHub(t, key, nil, b) // knows only b; hears of a from it
	for _, m := range []*Member{a, b, c} {
		waitHubs(t, m, a, b, c)
	}
	if err := a.Register(Entry{Bind: "tcp/*:8080"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(Entry{Bind: "tcp/*:8081"}); err != nil {
		t.Fatal(err)
	}
	both := holds(Entry{Bind: "tcp/*:8080", Hub: a.ID()}, Entry{Bind: "tcp/*:8081", Hub: c.ID()})
	for _, m := range []*Member{a, b, c} {
		waitFor(t, m, "registered on a and c", both)
	}

	c.shut(false) // as a SIGKILL would: no goodbye, the probes find out
	cDoor.node.Close()
	for _, m := range []*Member{a, b} {
		waitHubs(t, m, a, b)
		waitFor(t, m, "after c was killed", holds(Entry{Bind: "tcp/*:8080", Hub: a.ID()}))
	}

	d, _ := startHub(t, key, nil, b)
	waitFor(t, d, "late member", holds(Entry{Bind: "tcp/*:8080", Hub: a.ID()}))
}

// TestStaticWrongKeyStaysOut: a member with another key fails the TLS
// handshake of every probe and never joins.
func TestStaticWrongKeyStaysOut(t *testing.T) {
	t.Parallel()
	a := startStatic(t, testKey(t), nil)
	rec := testkit.NewRecorder()
	b := startStatic(t, testKey(t), slog.New(rec), a)
	rec.Wait(t, waitLimit, "b's probes of a failing", func(r testkit.Record) bool {
		n, _ := r.Attrs["probes"].(int64)
		return r.Msg == "cluster: probe failed" && r.Attrs["member"] == a.ID() && n >= DefaultProbeFailures
	})
	if hubs := b.Hubs(); len(hubs) != 1 || hubs[0] != b.ID() {
		t.Errorf("b (another key) counts hubs %v, want only itself", hubs)
	}
	if hubs := a.Hubs(); len(hubs) != 1 || hubs[0] != a.ID() {
		t.Errorf("a counts hubs %v, want only itself", hubs)
	}
}
