package actors

import (
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestPoolReportsLiveMembers: a clustered hub (a BindWatcher) counts a
// pool's members whose link is up, not those waiting to resume, so other
// hubs stop sending it connections for an edge that is gone, and start
// again when it is back.
func TestPoolReportsLiveMembers(t *testing.T) {
	port := testkit.FreeAddr(t)
	reports := make(chan int, 64)
	pooled := func(name string) func(*Config) {
		target := namer(t, name)
		return func(c *Config) {
			c.Remotes = []forward.Forward{{Bind: port, Target: target}}
			c.Pool = "web"
		}
	}
	p := newTestPair(t, pairConfig{B: pooled("edge1"), A: func(c *Config) {
		c.BindWatcher = func(rb ReverseBind) {
			if rb.Pool == "web" {
				reports <- rb.Members
			}
		}
	}})
	remoteListening(t, p.BLog, 1)
	second := p.AddEdge(t, pooled("edge2"))
	remoteListening(t, second.Log, 1)
	waitMembers(t, reports, 2, "both edges joined")

	second.Proxy.Refuse(true)
	second.Proxy.Cut()
	waitMembers(t, reports, 1, "the second edge's link waiting to resume")

	second.Proxy.Refuse(false)
	second.Node.Redial()
	waitMembers(t, reports, 2, "the second edge's link resumed")
}

// waitMembers waits for a report of want live members.
func waitMembers(t testing.TB, reports <-chan int, want int, what string) {
	t.Helper()
	limit := time.After(20 * time.Second)
	last := -1
	for {
		select {
		case n := <-reports:
			if n == want {
				return
			}
			last = n
		case <-limit:
			t.Fatalf("%s: no report of %d live members (last %d)", what, want, last)
		}
	}
}
