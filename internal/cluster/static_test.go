package cluster

import (
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// testKey is a fresh cluster key.
func testKey(t testing.TB) []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// startStatic starts a member of the static provider with key, probing
// every 200 ms, seeded with the members given.
func startStatic(t testing.TB, key []byte, log *slog.Logger, seeds ...*Member) *Member {
	t.Helper()
	cfg := Config{Provider: "static", Key: key, Probe: 200 * time.Millisecond, Logger: log}
	for _, s := range seeds {
		cfg.Seeds = append(cfg.Seeds, s.ID())
	}
	return start(t, cfg)
}

// TestStaticMembership: members seeded in a chain find each other, a
// killed member leaves with its entries, and a late one gets the
// directory, all over mutual TLS.
func TestStaticMembership(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := startStatic(t, key, nil)
	b := startStatic(t, key, nil, a)
	c := startStatic(t, key, nil, b) // knows only b; hears of a from it
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
	for _, m := range []*Member{a, b} {
		waitHubs(t, m, a, b)
		waitFor(t, m, "after c was killed", holds(Entry{Bind: "tcp/*:8080", Hub: a.ID()}))
	}

	d := startStatic(t, key, nil, b)
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
		return r.Msg == "cluster: probe not answered" && r.Attrs["member"] == a.ID() && n >= DefaultProbeFailures
	})
	if hubs := b.Hubs(); len(hubs) != 1 || hubs[0] != b.ID() {
		t.Errorf("b (another key) counts hubs %v, want only itself", hubs)
	}
	if hubs := a.Hubs(); len(hubs) != 1 || hubs[0] != a.ID() {
		t.Errorf("a counts hubs %v, want only itself", hubs)
	}
}
