package actors

import (
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestBindRetriedWhenPortFreed: an edge that comes back at once after a
// crash finds its -R's port still held for its old link, which the hub
// keeps for the resume window; the BIND refused for a taken socket is
// asked for again, and once the old link's window is over the new link
// listens there.
func TestBindRetriedWhenPortFreed(t *testing.T) {
	port := testkit.FreeAddr(t)
	a, b := hello(t, "aaaa"), hello(t, "bbbb")
	p := newTestPair(t, pairConfig{Proxy: true,
		A: func(c *Config) { c.ResumeWindow = 2 * time.Second },
		B: func(c *Config) { c.Remotes = []forward.Forward{{Bind: port, Target: a}} }})
	remoteListening(t, p.BLog, 1)
	if got := greeting(t, port); got != "aaaa" {
		t.Fatalf("the first edge's -R reached %q", got)
	}
	// The first edge is gone (its proxy cut and refusing): the hub holds
	// its link, and the port, for the resume window.
	p.Proxy.Refuse(true)
	p.Proxy.Cut()
	p.ALog.Wait(t, 10*time.Second, "the hub to hold the first edge's link", func(r testkit.Record) bool {
		return r.Msg == "link lost its last carrier; waiting to resume it"
	})
	second := p.AddEdge(t, func(c *Config) { c.Remotes = []forward.Forward{{Bind: port, Target: b}} })
	second.Log.Wait(t, 10*time.Second, "the second edge's -R refused while the port is held", func(r testkit.Record) bool {
		return r.Msg == "reverse forward refused by the peer" && r.Attrs["retry_in"] != nil
	})
	remoteListening(t, second.Log, 1)
	if got := greeting(t, port); got != "bbbb" {
		t.Errorf("after the first edge's window, the port reached %q, want the second edge's target", got)
	}
}
