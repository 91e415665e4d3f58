package actors

// Pooled reverse forwards: links that ask this node to listen on the same
// address under the same pool name (connect --pool NAME -R ...) share one
// listening socket, and each connection it accepts goes to the live member
// with the fewest open streams (frp's load-balancing groups, ngrok's
// endpoint pooling).
//
// Who owns what: the node's poolSet owns each pool and its listening
// socket; the socket's accept loop and the connections waiting for a
// member are a listenerActor spawned at the root (it outlives any one
// link); each member is a poolMemberActor, a child of the Link whose BIND
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

// poolSet is a node's pools, by the address they listen on.
type poolSet struct {
	mu     sync.Mutex
	byAddr map[string]*pool
}

// pool is one pooled listening socket and its members, in joining order,
// and the other hubs' shares of it (pool_peers.go).
type pool struct {
	name    string
	ln      net.Listener
	pid     *actor.PID // its listenerActor
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
}

// newPoolMember is link's BIND number id, as a pool member.
func newPoolMember(e *env, link *actor.PID, id uint32) *poolMember {
	return &poolMember{env: e, link: link, target: strconv.FormatUint(uint64(id), 10)}
}

// join adds m to the pool listening on addr under name, making the pool
// (listen, and spawn its accept loop) if there is none. It reports the
// address bound, or why the BIND fails: the address is another pool's, or
// listening failed (another socket, pooled or not, has it).
func (e *env) joinPool(addr, name string, m *poolMember) (string, error) {
	ps := &e.pools
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.byAddr[addr]; p != nil {
		if p.name != name {
			return "", fmt.Errorf("%s is taken by pool %q", addr, p.name)
		}
		p.members = append(p.members, m)
		e.send(p.pid, &linkAvailable{})
		e.watchBind(p.ln.Addr().String(), name, len(p.members))
		return p.ln.Addr().String(), nil
	}
	ln, err := listenTCP(addr) // bind and listen: no waiting
	if err != nil {
		return "", err
	}
	p := &pool{name: name, ln: ln, members: []*poolMember{m}}
	p.pid = e.sys.Root.Spawn(e.props(func() actor.Actor { return newPoolListener(e, ln, p) }))
	if ps.byAddr == nil {
		ps.byAddr = make(map[string]*pool)
	}
	ps.byAddr[addr] = p
	e.watchBind(ln.Addr().String(), name, 1)
	return ln.Addr().String(), nil
}

// leavePool takes m out of the pool on addr. The last member to leave
// closes the socket there and then, so the address is free for the next
// BIND at once, and stops the pool's listener.
func (e *env) leavePool(addr string, m *poolMember) {
	ps := &e.pools
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.byAddr[addr]
	if p == nil {
		return
	}
	for i, q := range p.members {
		if q == m {
			p.members = append(p.members[:i], p.members[i+1:]...)
			break
		}
	}
	e.watchBind(p.ln.Addr().String(), p.name, len(p.members))
	if len(p.members) > 0 || len(p.peers) > 0 {
		return
	}
	e.closePoolLocked(addr, p)
	e.log.Info("pooled reverse forward closed: its last member left", "pool", p.name, "listen", p.ln.Addr().String())
}

// closePoolLocked closes pool p on addr: its socket at once, its listener
// after; e.pools.mu is held.
func (e *env) closePoolLocked(addr string, p *pool) {
	delete(e.pools.byAddr, addr)
	p.ln.Close()
	e.sys.Root.Stop(p.pid)
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
	ran := runStrand && st != nil && st.claim()
	c.via.env.send(link, r)
	if ran {
		st.run(strandRunMax)
	}
	return true
}

// members is how many links are in the pool on addr (for tests and status).
func (e *env) poolMembers(addr string) int {
	e.pools.mu.Lock()
	defer e.pools.mu.Unlock()
	if p := e.pools.byAddr[addr]; p != nil {
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
	env  *env
	addr string
	m    *poolMember
}

func (a *poolMemberActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Stopping); ok {
		a.env.leavePool(a.addr, a.m)
	}
}

// poolForward names a pool's listener in logs and stats.
func poolForward(ln net.Listener, p *pool) forward.Forward {
	return forward.Forward{Bind: ln.Addr().String(), Target: "pool " + p.name}
}
