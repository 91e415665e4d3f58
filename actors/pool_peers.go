package actors

// Other hubs' shares of a pooled reverse forward: in a hub cluster
// (internal/cluster's bridge) the edges of one pool may be linked to
// several hubs, and every hub listens on the pool's address. A hub's pool
// then holds, beside its own members (links to its edges), a share for
// each other hub holding members: a connection given to a share is
// carried as a stream over Via's newest link to that hub, which dials
// Target there (its own pool's address; splice.go hands it to one of its
// members in process). pick weighs a share by the members it stands for,
// so connections spread over the pool's edges wherever they are linked.
//
// A pool of shares only (a hub none of whose edges holds the pool) has no
// member whose end closes it: SetPoolPeers with no shares does, or the
// node's Shutdown (closePools).

import (
	"fmt"
	"sync/atomic"
)

// PoolPeer is another hub's share of a pooled reverse forward.
type PoolPeer struct {
	// Hub names the other hub; SetPoolPeers keeps a share's count of
	// open streams from one call to the next by it.
	Hub string
	// Via is the node whose link reaches that hub.
	Via *Node
	// Target is what a stream asks that hub to dial: the address its own
	// pool listens on.
	Target string
	// Members is how many of the pool's edges that hub holds: the share's
	// weight (at least 1).
	Members int
}

// poolPeer is a PoolPeer in its pool.
type poolPeer struct {
	hub    string
	via    *Node
	target string
	weight int
	load   atomic.Int32 // streams the pool has opened through it that are still open
}

// live reports whether the share's node has a link up.
func (q *poolPeer) live() bool {
	link, _ := q.via.env.links.newestOn()
	return link != nil
}

// SetPoolPeers makes peers the other hubs' shares of the pool named name
// on addr (the address as a BIND there would be bound here), in place of
// those it had. With shares and no pool, it listens on addr for one; with
// none left and no member of its own, the pool closes. It reports the
// address the pool is bound to ("" once none is), or why not: addr is
// another pool's, or listening failed.
func (n *Node) SetPoolPeers(addr, name string, peers []PoolPeer) (string, error) {
	return n.setPoolPeers(addr, name, false, peers)
}

// SetUDPPoolPeers is SetPoolPeers for the UDP pool on addr: a flow (a
// client address's datagrams) given to a share is carried as a datagram
// stream over Via's newest link to that hub, whose node sends it to
// Target (pool_udp.go: an address where that hub's own members take it).
func (n *Node) SetUDPPoolPeers(addr, name string, peers []PoolPeer) (string, error) {
	return n.setPoolPeers(addr, name, true, peers)
}

func (n *Node) setPoolPeers(addr, name string, udp bool, peers []PoolPeer) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return "", ErrClosed
	}
	e := n.env
	ps := &e.pools
	ps.mu.Lock()
	defer ps.mu.Unlock()
	key := poolKey(addr, udp)
	p := ps.byAddr[key]
	switch {
	case p == nil && len(peers) == 0:
		return "", nil
	case p == nil:
		var err error
		if p, err = e.openPoolLocked(addr, name, udp); err != nil {
			return "", err
		}
		e.log.Info("pooled reverse forward listening for other hubs' edges", "pool", name, "listen", p.String())
	case p.name != name:
		return "", fmt.Errorf("%s is taken by pool %q", addr, p.name)
	}
	had := map[string]*poolPeer{}
	for _, q := range p.peers {
		had[q.hub] = q
	}
	p.peers = p.peers[:0]
	for _, pp := range peers {
		q := had[pp.Hub]
		if q == nil || q.via != pp.Via {
			q = &poolPeer{hub: pp.Hub}
		}
		q.via, q.target, q.weight = pp.Via, pp.Target, max(pp.Members, 1)
		p.peers = append(p.peers, q)
	}
	if len(p.members) == 0 && len(p.peers) == 0 {
		e.closePoolLocked(key, p)
		e.log.Info("pooled reverse forward closed: no hub holds it any more", "pool", name, "listen", p.String())
		return "", nil
	}
	e.send(p.pid, &linkAvailable{}) // connections waiting may go to a new share
	return p.bound, nil
}
