package actors

// Pooled reverse forwards: links that ask this node to listen on the same
// address under the same pool name (connect --pool NAME -R ...) share one
// listening socket, and each connection it accepts goes to the live member
// with the fewest open streams (frp's load-balancing groups, ngrok's
// endpoint pooling). A UDP pool (pool_udp.go) spreads flows, a flow being
// one client address's datagrams, the same way.
//
// Who owns what: the node's poolSet owns each pool and its listening
// socket; the socket's accept loop and the connections waiting for a
// member are a listenerActor spawned at the root (it outlives any one
// link), a UDP pool's socket and flows a udpListener; each member is a poolMemberActor, a child of the Link whose BIND
// joined it, which leaves the pool when it stops — at UNBIND, when the
// session ends, or when the Link itself stops — so the Link's own lifecycle
// (protoactor's Stopping and Terminated) does the bookkeeping. The pool's
// socket closes when its last member leaves.

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
)

// poolSet is a node's pools, by poolKey: the address they listen on, and
// whether for datagrams (a TCP and a UDP pool may share a port).
type poolSet struct {
	mu     sync.Mutex
	byAddr map[string]*pool
}

// poolKey is what poolSet knows the pool on addr by.
func poolKey(addr string, udp bool) string {
	if udp {
		return "udp/" + addr
	}
	return addr
}

// pool is one pooled listening socket and its members, in joining order,
// and the other hubs' shares of it (pool_peers.go).
type pool struct {
	name    string
	ln      net.Listener // a TCP pool's socket
	pc      *net.UDPConn // a UDP pool's socket
	door    *net.UDPConn // a UDP pool's door in a hub cluster, for other hubs' flows (pool_udp.go)
	bound   string       // the address the socket is bound to
	pid     *actor.PID   // its listenerActor (TCP) or udpListener (UDP)
	doorPID *actor.PID   // the door's udpListener
	members []*poolMember
	peers   []*poolPeer
	next    int // where the round robin among equally loaded choices goes on
}

// poolMember is one link's BIND in a pool.
type poolMember struct {
	env    *env
	link   *actor.PID
	target string       // the BIND's forward id on that link, in decimal: the OPEN's target
	load   atomic.Int32 // streams the pool has opened on it that are still open
	left   atomic.Bool  // it has left its pool: a UDP flow on it moves (pool_udp.go)
}

// newPoolMember is link's BIND number id, as a pool member.
func newPoolMember(e *env, link *actor.PID, id uint32) *poolMember {
	return &poolMember{env: e, link: link, target: strconv.FormatUint(uint64(id), 10)}
}

// joinPool adds m to the pool listening on addr (for datagrams: udp)
// under name, making the pool (listen, and spawn the actor serving the
// socket) if there is none. It reports the address bound, or why the BIND
// fails: the address is another pool's, or listening failed (another
// socket, pooled or not, has it).
func (e *env) joinPool(addr, name string, udp bool, m *poolMember) (string, error) {
	ps := &e.pools
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.byAddr[poolKey(addr, udp)]; p != nil {
		if p.name != name {
			return "", fmt.Errorf("%s is taken by pool %q", addr, p.name)
		}
		p.members = append(p.members, m)
		e.send(p.pid, &linkAvailable{})
		e.watchPool(p)
		return p.bound, nil
	}
	p, err := e.openPoolLocked(addr, name, udp)
	if err != nil {
		return "", err
	}
	p.members = []*poolMember{m}
	e.watchPool(p)
	return p.bound, nil
}

// openPoolLocked listens on addr (bind, and listen: no waiting) for a new
// pool of that name, with no member yet, and spawns the actor serving
// the socket; e.pools.mu is held.
func (e *env) openPoolLocked(addr, name string, udp bool) (*pool, error) {
	p := &pool{name: name}
	if udp {
		pc, err := listenUDP(addr)
		if err != nil {
			return nil, err
		}
		p.pc, p.bound = pc, pc.LocalAddr().String()
		if e.cfg.BindWatcher != nil { // a hub cluster's: other hubs bring flows to the door
			door, err := listenUDP(udpDoorAddr)
			if err != nil {
				pc.Close()
				return nil, fmt.Errorf("%w: %w", errPoolDoor, err)
			}
			p.door = door
			p.doorPID = e.sys.Root.Spawn(e.props(func() actor.Actor { return newPoolUDPDoor(e, door, p) }))
		}
		p.pid = e.sys.Root.Spawn(e.props(func() actor.Actor { return newPoolUDPListener(e, pc, p) }))
	} else {
		ln, err := listenTCP(addr)
		if err != nil {
			return nil, err
		}
		p.ln, p.bound = ln, ln.Addr().String()
		p.pid = e.sys.Root.Spawn(e.props(func() actor.Actor { return newPoolListener(e, ln, p) }))
	}
	if e.pools.byAddr == nil {
		e.pools.byAddr = make(map[string]*pool)
	}
	e.pools.byAddr[poolKey(addr, udp)] = p
	return p, nil
}

// watchPool tells the BindWatcher, if any, how many live members p has
// here, with e.pools.mu held: members whose link is down or waiting to
// resume are not counted, so other hubs send nothing here for them (a
// holder whose last member waits to resume says 0, and they stop
// bridging to it until it is back: poolLinkChanged).
func (e *env) watchPool(p *pool) {
	if e.cfg.BindWatcher == nil {
		return
	}
	door := ""
	if p.door != nil {
		door = p.door.LocalAddr().String()
	}
	live := 0
	for _, m := range p.members {
		if e.links.has(m.link) {
			live++
		}
	}
	e.watchAnyBind(p.pc != nil, p.bound, p.name, live, door)
}

// poolLinkChanged is link going down, waiting to resume, or up again:
// every pool it is a member of tells the BindWatcher its live members
// anew.
func (e *env) poolLinkChanged(link *actor.PID) {
	if e.cfg.BindWatcher == nil {
		return
	}
	e.pools.mu.Lock()
	defer e.pools.mu.Unlock()
	for _, p := range e.pools.byAddr {
		for _, m := range p.members {
			if m.link.Equal(link) {
				e.watchPool(p)
				break
			}
		}
	}
}

// leavePool takes m out of the pool known by key (poolKey). The last
// member to leave closes the socket there and then, so the address is
// free for the next BIND at once, and stops the pool's listener.
func (e *env) leavePool(key string, m *poolMember) {
	m.left.Store(true)
	ps := &e.pools
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.byAddr[key]
	if p == nil {
		return
	}
	for i, q := range p.members {
		if q == m {
			p.members = append(p.members[:i], p.members[i+1:]...)
			break
		}
	}
	e.watchPool(p)
	if len(p.members) > 0 || len(p.peers) > 0 {
		return
	}
	e.closePoolLocked(key, p)
	e.log.Info("pooled reverse forward closed: its last member left", "pool", p.name, "listen", p.String())
}

// String is the pool's address as logged: "host:port", or
// "host:port/udp".
func (p *pool) String() string {
	if p.pc != nil {
		return p.bound + "/udp"
	}
	return p.bound
}

// closePoolLocked closes pool p, known by key: its socket at once, its
// listener after; e.pools.mu is held.
func (e *env) closePoolLocked(key string, p *pool) {
	delete(e.pools.byAddr, key)
	if p.pc != nil {
		p.pc.Close()
	} else {
		p.ln.Close()
	}
	e.sys.Root.Stop(p.pid)
	if p.door != nil {
		p.door.Close()
		e.sys.Root.Stop(p.doorPID)
	}
}

// closePools closes every pool: at shutdown, those a link's end does not
// close (a pool of other hubs' shares only, pool_peers.go).
func (e *env) closePools() {
	e.pools.mu.Lock()
	defer e.pools.mu.Unlock()
	for addr, p := range e.pools.byAddr {
		e.closePoolLocked(addr, p)
	}
}

// pick chooses where a new connection goes: of the live members (link up,
// not down, not waiting to resume) and the live shares of other hubs
// (pool_peers.go), the one with the fewest open streams from this pool
// for its weight (a member weighs 1, a share the members it stands for),
// ties going round in order. It counts the stream against the choice at
// once, so a burst of connections spreads before any of their OPENs is
// answered. localOnly leaves the other hubs' shares out (a connection
// another hub brought here goes no further than one hop, splice.go). The
// zero choice: nothing is live.
func (e *env) pick(p *pool, localOnly bool) poolChoice {
	e.pools.mu.Lock()
	defer e.pools.mu.Unlock()
	var best poolChoice
	var bestLoad, bestWeight int64
	nm := len(p.members)
	n := nm
	if !localOnly {
		n += len(p.peers)
	}
	bestAt := 0
	for k := range n {
		i := (p.next + k) % n
		var c poolChoice
		var load, weight int64
		if i < nm {
			m := p.members[i]
			if !e.links.has(m.link) {
				continue
			}
			c, load, weight = poolChoice{member: m}, int64(m.load.Load()), 1
		} else {
			q := p.peers[i-nm]
			if !q.live() {
				continue
			}
			c, load, weight = poolChoice{peer: q, via: q.via, target: q.target}, int64(q.load.Load()), int64(q.weight)
		}
		// load/weight below the best's, without dividing.
		if !best.ok() || load*bestWeight < bestLoad*weight {
			best, bestLoad, bestWeight, bestAt = c, load, weight, i
		}
	}
	if best.ok() {
		best.counter().Add(1)
		p.next = bestAt + 1
	}
	return best
}

// poolChoice is where pick sends a connection: a member here, or another
// hub's share.
type poolChoice struct {
	member *poolMember
	peer   *poolPeer
	via    *Node  // the share's, as pick saw it
	target string // the share's, as pick saw it
}

func (c poolChoice) ok() bool { return c.member != nil || c.peer != nil }

// counter is the choice's count of open streams.
func (c poolChoice) counter() *atomic.Int32 {
	if c.member != nil {
		return &c.member.load
	}
	return &c.peer.load
}

// open sends conn (with first, reply and opened as the listener had them)
// on to the choice, over the member's link or over the share's node's
// newest link; the stream takes itself off the choice's load when it
// ends. It reports false, having taken the stream off again, when the
// share's link has just gone (the connection is the caller's still).
// runStrand: the caller is an accept loop, not an actor, and runs the
// share's link's strand itself when no goroutine does (as openNow).
func (c poolChoice) open(r *openRequest, runStrand bool) bool {
	r.load = c.counter()
	if c.member != nil {
		r.kind, r.target = engine.TargetForward, c.member.target
		c.member.env.send(c.member.link, r)
		return true
	}
	link, st := c.via.env.links.newestOn()
	if link == nil {
		r.unload()
		return false
	}
	r.kind, r.target = engine.TargetDial, c.target
	if r.datagram { // a UDP pool's flow: the share's hub sends it on to its own pool (pool_udp.go)
		r.kind = engine.TargetUDP
	}
	ran := runStrand && st != nil && st.claim()
	c.via.env.send(link, r)
	if ran {
		st.run(strandRunMax)
	}
	return true
}

// poolMembers is how many links are in the pool known by key (poolKey),
// for logs.
func (e *env) poolMembers(key string) int {
	e.pools.mu.Lock()
	defer e.pools.mu.Unlock()
	if p := e.pools.byAddr[key]; p != nil {
		return len(p.members)
	}
	return 0
}

// newPoolListener serves pool p's socket ln.
func newPoolListener(e *env, ln net.Listener, p *pool) *listenerActor {
	l := newListener(e, ln, poolForward(ln, p))
	l.pool, l.kind = p, engine.TargetForward
	return l
}

// poolMemberActor is one link's membership in a pool, as a child of that
// Link: it leaves the pool when it stops.
type poolMemberActor struct {
	env *env
	key string // its pool's poolKey
	m   *poolMember
}

func (a *poolMemberActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Stopping); ok {
		a.env.leavePool(a.key, a.m)
	}
}

// poolForward names a pool's listener in logs and stats.
func poolForward(ln net.Listener, p *pool) forward.Forward {
	return forward.Forward{Bind: ln.Addr().String(), Target: "pool " + p.name}
}
