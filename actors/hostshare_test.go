package actors

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// TestHostShares: under pressure a host at its fair share is refused, a
// newcomer still gets in, everyone is refused at the hard limit, and a
// released stream makes room again.
func TestHostShares(t *testing.T) {
	h := newHostShares(64) // pressure 48, hard 56
	if h.pressure != 48 || h.hard != 56 {
		t.Fatalf("pressure %d, hard %d; want 48, 56", h.pressure, h.hard)
	}
	var held []*hostShare
	admit := func(host string, want bool) {
		t.Helper()
		s, ok, n, total := h.admit(host)
		if ok != want {
			t.Fatalf("%s with %d of %d streams: admitted %v, want %v", host, n, total, ok, want)
		}
		if ok {
			held = append(held, s)
		}
	}
	for range 48 {
		admit("attacker", true) // below pressure: anyone
	}
	admit("attacker", false) // alone at pressure: its share is all of it
	for range 8 {
		admit("honest", true) // into the room between pressure and hard
	}
	admit("third", false) // at the hard limit: nobody
	h.release(held[0])
	held = held[1:]
	admit("third", true)
	admit("attacker", false)
	for _, s := range held {
		h.release(s)
	}
	if h.total != 0 || len(h.byHost) != 0 {
		t.Fatalf("all released: total %d, %d hosts left", h.total, len(h.byHost))
	}
	for _, tc := range []struct{ peer, host string }{
		{"127.0.0.1:5000", "127.0.0.1"}, {"tcp://hub.example:7000", "hub.example"}, {"[::1]:9", "::1"}, {"pipe", "pipe"},
	} {
		if got := peerHost(tc.peer); got != tc.host {
			t.Errorf("peerHost(%q) = %q, want %q", tc.peer, got, tc.host)
		}
	}
}

// TestHostileManyStreamsOneHost: a peer host that opens streams until the
// node nears its file descriptor limit is refused past its share, with a
// reason, while a peer from another host still opens streams and moves
// data (found by a hostile tester: 22 links of 1024 streams from one
// source exhausted a hub's descriptors and every other peer's new stream
// failed).
func TestHostileManyStreamsOneHost(t *testing.T) {
	log := testkit.NewRecorder()
	h := newHostile(t, nil, func(_ *hostile, c *Config) {
		c.Logger = slog.New(log)
		c.fdLimit = 64 // pressure at 48 streams, the hard limit at 56
	})
	p := wirepeer.Connect(t, h.pair.LinkAddr, wirepeer.Options{Source: "127.0.0.2"})
	var b []byte
	ids := make([]uint32, 49)
	for i := range ids {
		ids[i] = p.NextID()
		b = p.Append(b, engine.TypeOpen, ids[i], wirepeer.OpenPayload(engine.TargetDial, h.held, nil))
	}
	check(t, p.Write(b))
	got := answers(t, p, ids)
	for _, id := range ids[:48] {
		if got[id].Type != engine.TypeOpenOK {
			t.Fatalf("stream %d below the pressure: %v; want OPEN_OK", id, got[id].Type)
		}
	}
	last := got[ids[48]]
	if r, _ := engine.ParseReason(last.Payload); last.Type != engine.TypeOpenFail || r.Code != engine.CodeTooManyStream {
		t.Fatalf("the host's stream past its share: %v %v; want OPEN_FAIL code %d", last.Type, r, engine.CodeTooManyStream)
	}
	log.Wait(t, hostileGuard, "the refusal logged with the host", func(r testkit.Record) bool {
		return r.Msg == "stream refused" && r.Attrs["peer"] != nil && strings.Contains(fmt.Sprint(r.Attrs["reason"]), "127.0.0.2")
	})
	h.goodTransfer(t, 3, 256<<10) // another host: room is kept for it
	p.Close()
	hostileWaitFor(t, "the host's streams released", func() bool {
		h.pair.A.env.hosts.mu.Lock()
		defer h.pair.A.env.hosts.mu.Unlock()
		return h.pair.A.env.hosts.total == 0
	})
}
