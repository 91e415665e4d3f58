package cluster

// The pools' side of the bridge: for each TCP bind and each pooled UDP
// bind other hubs hold, the shares this hub's pool for it gets
// (actors.Node.SetPoolPeers, SetUDPPoolPeers), one per holding hub whose
// link is up, weighed by the edges it holds there.

import (
	"errors"
	"slices"
	"strings"

	"github.com/sockmux/sockmux/actors"
)

// poolRoute is the shares of one pool here, as given to the node.
type poolRoute struct {
	name   string
	shares []share // sorted by hub
}

// share is one other hub's part of a pool.
type share struct {
	hub, target string
	members     int
}

// applyPools gives each pool the shares want asks for whose link is up,
// and takes them from the pools want no longer names (a pool of shares
// only closes then).
func (b *Bridge) applyPools(want map[routeKey]poolRoute) {
	b.mu.Lock()
	node := b.node
	b.mu.Unlock()
	if node == nil {
		return // Attach gives it
	}
	addrs := map[routeKey]bool{}
	for addr := range want {
		addrs[addr] = true
	}
	for addr := range b.pools {
		addrs[addr] = true
	}
	for addr := range addrs {
		w := want[addr]
		live := poolRoute{name: w.name}
		for _, sh := range w.shares {
			if _, ok := b.peers[sh.hub]; ok && b.isUp(sh.hub) {
				live.shares = append(live.shares, sh)
			}
		}
		slices.SortFunc(live.shares, func(x, y share) int { return strings.Compare(x.hub, y.hub) })
		had, ok := b.pools[addr]
		if !ok && len(live.shares) == 0 || ok && had.name == live.name && slices.Equal(had.shares, live.shares) {
			continue
		}
		if ok && had.name != live.name && len(live.shares) > 0 {
			// Another pool's name: the old one's shares go first.
			if err := b.setShares(node, addr, poolRoute{name: had.name}, had); err != nil {
				continue
			}
			had, ok = poolRoute{}, false
			delete(b.pools, addr)
		}
		if len(live.shares) == 0 {
			live.name = had.name
		}
		if err := b.setShares(node, addr, live, had); err != nil {
			continue
		}
		if len(live.shares) == 0 {
			delete(b.pools, addr)
		} else {
			b.pools[addr] = live
		}
	}
}

// setShares gives the pool on addr the shares of r, logging what changed
// from had.
func (b *Bridge) setShares(node *actors.Node, addr routeKey, r, had poolRoute) error {
	peers := make([]actors.PoolPeer, 0, len(r.shares))
	for _, sh := range r.shares {
		peers = append(peers, actors.PoolPeer{Hub: sh.hub, Via: b.peers[sh.hub], Target: sh.target, Members: sh.members})
	}
	set := node.SetPoolPeers
	if addr.udp {
		set = node.SetUDPPoolPeers
	}
	if _, err := set(addr.local, r.name, peers); err != nil {
		if errors.Is(err, actors.ErrClosed) {
			return err // the hub is stopping: its pools are closed
		}
		b.warnOnce("share:"+addr.String()+"\x00"+err.Error(), "cluster: could not bridge a bind of other hubs", "listen", addr.String(), "pool", r.name, "reason", err)
		return err
	}
	for _, sh := range r.shares {
		if !slices.ContainsFunc(had.shares, func(o share) bool { return o.hub == sh.hub }) {
			b.log.Info("cluster: bridging a bind of another hub", "listen", addr.String(), "pool", r.name, "hub", sh.hub, "target", sh.target, "members", sh.members)
		}
	}
	for _, sh := range had.shares {
		if !slices.ContainsFunc(r.shares, func(o share) bool { return o.hub == sh.hub }) {
			b.log.Info("cluster: bind no longer bridged", "listen", addr.String(), "pool", had.name, "hub", sh.hub)
		}
	}
	return nil
}
