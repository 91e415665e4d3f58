package actors

// Pooled UDP reverse forwards: links that ask this node for the same UDP
// address under the same pool name (connect --pool NAME -R
// '*:PORT/udp:...') share one socket. Its udpListener treats each client
// address as a flow, as a UDP -R of one link does, and gives each new
// flow to the live member (or other hub's share, pool_peers.go) with the
// fewest open streams, as pick does for a TCP pool's connections. A flow
// stays with its choice for its life: its datagrams go on the one stream
// opened for it. When that choice is no longer live (its link down or
// waiting to resume, the member gone from the pool, the share's link
// gone), the flow's next datagram ends that stream and opens the flow
// again on a live choice: a datagram is worth nothing late, and a flow
// that waited for a resume would take none of its datagrams meanwhile.
//
// In a hub cluster (a node with a BindWatcher: internal/cluster's bridge)
// another hub gives flows to this hub's members as a datagram stream to
// this hub, which sends the flow's datagrams from a socket of its own
// (conn.go's UDP dial) to a target here. Were that target the pool's
// socket, the flow would be a new client of the whole pool, which could
// give it back to another hub. So a clustered UDP pool has a door too: a
// second socket, on loopback, served by a udpListener of its own whose
// flows go to this node's own members only (pick's localOnly, as
// splice.go's for a TCP pool). The door's address is registered with the
// bind (ReverseBind.Door), and it is what the other hubs' shares target:
// a flow crosses one hop between hubs at most.
//
// Who owns what: as for a TCP pool (pool.go), the poolSet owns the pool
// and its sockets (the door's too), the udpListeners (spawned at the
// root) the flows, each a udpConn the stream opened for it reads and
// writes.

import (
	"net"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
)

// newPoolUDPListener serves UDP pool p's socket pc (its own, or its door:
// the door's flows count as the pool's, as splice.go's do for a TCP pool).
func newPoolUDPListener(e *env, pc *net.UDPConn, p *pool) *udpListener {
	return &udpListener{env: e, pc: pc, pool: p, kind: engine.TargetForward, sessions: make(map[string]*udpConn),
		fwd: forward.Forward{Bind: p.bound, Target: "pool " + p.name, UDP: true}}
}

// udpDoorAddr is where a clustered UDP pool's door listens: loopback,
// as the other hubs' streams are dialled from this host.
const udpDoorAddr = "127.0.0.1:0"

// newPoolUDPDoor serves UDP pool p's door: flows to local members only.
func newPoolUDPDoor(e *env, door *net.UDPConn, p *pool) *udpListener {
	u := newPoolUDPListener(e, door, p)
	u.localOnly = true
	return u
}

// live reports whether the choice may still take a flow's datagrams: a
// member still in its pool whose link is up, or a share whose node has a
// link up.
func (c poolChoice) live() bool {
	if c.member != nil {
		return !c.member.left.Load() && c.member.env.links.has(c.member.link)
	}
	return c.peer != nil && c.peer.live()
}

// openPooled opens the flow s from a client of a UDP pool on the live
// choice with the fewest open streams, and reports whether it did (with
// nothing live, the flow's datagram is dropped: UDP has no one to wait
// for).
func (u *udpListener) openPooled(s *udpConn) bool {
	ch := u.env.pick(u.pool, u.localOnly)
	if !ch.ok() {
		return false
	}
	if !ch.open(&openRequest{conn: s, datagram: true, forward: u.fwd.String()}, false) {
		return false
	}
	s.choice = ch
	return true
}
