package actors

// What a node tells Config.BindWatcher of the reverse forwards it listens
// on: the hub cluster registers each in its directory so that the other
// hubs bind it too.

import "net"

// ReverseBind is one reverse forward this node listens on for peers.
type ReverseBind struct {
	// UDP: a datagram forward ("port/udp"), not a stream one.
	UDP bool
	// Addr is the address listened on, as bound ("127.0.0.11:8080").
	Addr string
	// Asked is the address the peer's -R asked for, as far as the node
	// can tell from Addr: with --remote-bind-addr H, a bind on H was a
	// bind for all addresses, and is given as "*:PORT"; "*:PORT" too
	// for a bind on 0.0.0.0 or ::.
	Asked string
	// Pool is the pool's name ("" for a forward of one link).
	Pool string
	// Members is how many links hold it here; 0: no longer listening.
	Members int
	// Door, for a UDP pool, is where another hub sends the flows it
	// gives this hub's members: a loopback address whose flows go to
	// this node's own members only (pool_udp.go), so a flow crosses one
	// hop between hubs at most.
	Door string
}

// watchBind tells the BindWatcher, if any, about the TCP forward on addr.
func (e *env) watchBind(addr, pool string, members int) {
	e.watchAnyBind(false, addr, pool, members, "")
}

// watchUDPBind tells the BindWatcher, if any, about the UDP forward on
// addr, which one link holds (members 1) or held (0).
func (e *env) watchUDPBind(addr string, members int) { e.watchAnyBind(true, addr, "", members, "") }

func (e *env) watchAnyBind(udp bool, addr, pool string, members int, door string) {
	if e.cfg.BindWatcher == nil {
		return
	}
	asked := addr
	if host, port, err := net.SplitHostPort(addr); err == nil {
		ip := net.ParseIP(host)
		if host == e.cfg.RemoteBindAddr || ip != nil && ip.IsUnspecified() {
			asked = "*:" + port
		}
	}
	e.cfg.BindWatcher(ReverseBind{UDP: udp, Addr: addr, Asked: asked, Pool: pool, Members: members, Door: door})
}
