package cluster

// A hub the others counted out comes back by itself.
//
// protoactor's member list blocks, for good, the id of every member that
// leaves its topology (cluster/member_list.go: each member that left is
// put on the remote's BlockList, and a topology never counts a blocked
// id again); it has no call to take an id off the list. So a hub cut off
// from the others for longer than their failure window (a partition, a
// blackholed path, a process stopped with SIGSTOP) is counted out, and
// when it answers again the others' providers list it once more, but
// their protoactor filters it out: it is never a member again under that
// id. It may not even know: the others' messages still reach it (the
// block list only turns a new connection's answer into "blocked", which
// protoactor's own dialler ignores), and it may still count them.
//
// The static provider tells it: each member remembers, per address, the
// protoactor id it counted out there, and says so in every probe and
// probe answer it sends to that address (probe.go: "expelled"). A member
// told its own id was counted out rejoins: it stops its incarnation
// (incarnation.go) and starts a fresh one, with a fresh id no one has
// blocked, at the same control-plane address (so its hub id, and its
// entries, stay what they were). The old one's server is stopped first
// (incarnation.go, retire), and the new one counts no member out for its
// first seconds, while the others' protoactor reaches it again (expel.go,
// remember). Sockmux's own state is the Member's and
// is kept: its entries, sent again to the directory after the new
// incarnation's first membership change, as after every one; the
// directory as it last saw it; the Watch and WatchHubs channels, whose
// readers (the bridge, the hub door) never see a member closed. Its hub
// links (health.go) are the provider's and are dialled again.
//
// When both sides counted each other out (everything between them went
// silent), only one side must rejoin, or a healed partition would churn
// every hub: each message carries the members its sender counts
// ("counted"), and the side that counts fewer rejoins; at equal counts,
// the side whose lowest address is higher; then the higher address.
// A side that was not counted out by the other (it still counts it)
// rejoins whatever the counts: it is the one the cluster left. Either
// way a member decides only on word from a member that passes its own
// probes, once a cut has healed (expel.go, heard).
//
// The static provider tells a member it was counted out. The etcd
// provider has no such word, but takes a hub whose lease ran out out of
// its own topology too, and that is the word (incarnation.go, selfGone);
// consul and k8s get the same rule, untested here (docs/CLUSTER.md).

import (
	"errors"
	"time"
)

// errRejoining is a request made while the member is between two
// incarnations.
var errRejoining = errors.New("rejoining the cluster")

// expelled is inc's provider finding that another member counted this
// hub's current id out; why says who. The loop rejoins, once per
// incarnation; a withdrawn hub (LinksClosed) does not (it would not be
// counted again), and says so once.
func (m *Member) expelled(inc *incarnation, why string) {
	m.mu.Lock()
	if m.closed || m.inc != inc || inc.told {
		m.mu.Unlock()
		return
	}
	inc.told = true
	id, withdrawn := inc.sys.ID, m.withdrawn
	m.mu.Unlock()
	if withdrawn {
		m.log.Info("cluster: the other hubs counted this withdrawn hub out; it does not rejoin", "addr", m.addr, "member", id)
		return
	}
	m.log.Warn("cluster: the other hubs counted this hub out: rejoining under a fresh member id",
		"addr", m.addr, "member", id, "reason", why)
	select {
	case m.rejoin <- struct{}{}:
	default:
	}
}

// rejoinCluster replaces the current incarnation, found expelled, with a
// fresh one at the same address, trying again every retryAfter until it
// starts or the member stops; it reports false if the member stopped
// first. The loop calls it.
func (m *Member) rejoinCluster() bool {
	m.mu.Lock()
	old := m.inc
	if old == nil || !old.told || m.withdrawn || m.closed {
		m.mu.Unlock()
		return true
	}
	// No longer current: its topology changes while it stops are not the
	// hub's, and a sync meanwhile waits for the next one.
	m.inc = nil
	m.mu.Unlock()
	known := old.known()
	began := time.Now()
	old.retire()
	for {
		inc, err := m.incarnate(m.rebindAddr(), known)
		if err == nil {
			if got := inc.sys.Address(); got != m.addr {
				m.log.Error("cluster: rejoined at another address than this hub's id", "addr", m.addr, "now", got)
			}
			m.log.Info("cluster: rejoined the cluster under a fresh member id",
				"addr", m.addr, "member", inc.sys.ID, "after", time.Since(began).Round(time.Millisecond))
			return true
		}
		m.log.Warn("cluster: could not rejoin the cluster, retrying", "addr", m.addr, "reason", err)
		select {
		case <-m.stop:
			return false
		case <-time.After(retryAfter):
		}
	}
}
