package actors

// What a reload may change while links run: the policies and the key, read
// at each decision, and the -R list, whose changes each link applies by
// BIND and UNBIND.

import (
	"maps"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/proxy"
)

// Policies are the parts of a Config that Node.SetPolicies changes on a
// running node. Each applies to what starts after the change: a stream the
// peer opens, a -R it asks for, a -D client, a handshake. Streams and binds
// already open stay as they are.
type Policies struct {
	AllowTargets *forward.TargetPolicy // nil: the default (Config.AllowTargets)
	AllowListen  *forward.TargetPolicy // nil: loopback only
	Direct       *forward.TargetPolicy
	ProxyAuth    *proxy.ProxyAuth
	Key          []byte
	// AuthorizedKeys are the peer keys admitted (Config.AuthorizedKeys):
	// a change closes the links of the keys it removed, and the others
	// take the new permissions for what they ask next.
	AuthorizedKeys *identity.AuthorizedKeys
}

// policies is the node's current Policies, replaced whole.
func (e *env) policies() *Policies { return e.live.Load() }

// SetPolicies replaces the node's policies and key (see Policies).
func (n *Node) SetPolicies(p Policies) {
	if p.AllowListen == nil {
		p.AllowListen = forward.LoopbackTargets
	}
	old := n.env.live.Swap(&p)
	if old != nil && !old.AuthorizedKeys.Equal(p.AuthorizedKeys) {
		n.env.eachLink(&authorizedChanged{})
	}
}

// targetPolicy is what the peer of this link may have dialled now.
func (l *linkActor) targetPolicy() *forward.TargetPolicy {
	p := l.env.policies().AllowTargets
	switch {
	case p != nil:
	case l.authed:
		p = forward.AnyTarget
	default:
		p = forward.LoopbackTargets
	}
	if permit, limited := l.permitTarget(); limited {
		return p.Also(permit, "permit-target for its key")
	}
	return p
}

// remotes is the node's -R list as slots: a forward's id on the wire is its
// slot + 1, for as long as the node runs, and a removed one leaves nil, so
// an id never names another forward than the one it was bound for.
func (e *env) remotes() []*forward.Forward { return *e.remoteSlots.Load() }

// remote is the -R with wire id id, or nil.
func (e *env) remote(id uint32) *forward.Forward {
	r := e.remotes()
	if id == 0 || uint64(id) > uint64(len(r)) {
		return nil
	}
	return r[id-1]
}

// SetRemotes makes want the node's -R list. Forwards kept keep their ids;
// so does one whose target alone changed (retargeted): the peer goes on
// listening, and the connections it brings from now on go to the new
// target (a BIND and an UNBIND of the same address would race: the new
// listen finding the old socket still there). Every link that is up asks
// its peer to listen for the new ones (BIND) and to stop listening for
// the removed ones (UNBIND, to a peer that offered CapUnbind). It returns
// how many were added, removed and retargeted.
func (n *Node) SetRemotes(want []forward.Forward) (added, removed, retargeted int) {
	e := n.env
	e.remoteMu.Lock()
	old := e.remotes()
	next := slices.Clone(old)
	for i, r := range next {
		if r != nil && !slices.Contains(want, *r) {
			next[i] = nil
			removed++
		}
	}
	for _, w := range want {
		if slices.ContainsFunc(next, func(r *forward.Forward) bool { return r != nil && *r == w }) {
			continue
		}
		// The same listen address as a slot just emptied: that slot, with
		// its id, now goes to the new target.
		if i := retargetable(old, next, w); i >= 0 {
			next[i] = &w
			removed--
			retargeted++
			continue
		}
		next = append(next, &w)
		added++
	}
	e.remoteSlots.Store(&next)
	e.remoteMu.Unlock()
	if added+removed > 0 {
		e.eachLink(&remotesChanged{})
	}
	return added, removed, retargeted
}

// retargetable is the index of a slot of old that next has just emptied
// and that listened where w listens, or -1.
func retargetable(old, next []*forward.Forward, w forward.Forward) int {
	for i, r := range old {
		if r != nil && i < len(next) && next[i] == nil && r.Bind == w.Bind && r.UDP == w.UDP {
			return i
		}
	}
	return -1
}

// eachLink sends msg to every Link of the node.
func (e *env) eachLink(msg any) {
	e.mu.Lock()
	for _, pid := range e.linkPIDs {
		e.send(pid, msg)
	}
	e.mu.Unlock()
}

// remotesChanged tells a Link that the node's -R list changed.
type remotesChanged struct{}

// syncBinds makes the BINDs of this link's session match the node's -R
// list: a BIND for each forward it has not asked for, an UNBIND for each it
// asked for that is gone.
func (l *linkActor) syncBinds(ctx actor.Context) {
	if !l.up || l.sched == nil {
		return
	}
	slots := l.env.remotes()
	for i, r := range slots {
		id := uint32(i + 1)
		if r == nil || l.bound[id] {
			continue
		}
		b := engine.Bind{ID: id, Addr: r.Bind}
		if r.UDP {
			b.Proto = 1
		}
		switch {
		case l.env.cfg.Pool != "" && l.params.Capabilities&engine.CapPool != 0:
			b.Pool = l.env.cfg.Pool
		case l.env.cfg.Pool != "":
			l.env.log.Warn("the peer predates pooled reverse forwards; this -R is not pooled there", "peer", l.peer, "listen", r.Bind)
		}
		l.bound[id] = true
		ctx.Send(l.sched, engine.NewBind(b))
	}
	for id := range l.bound {
		if l.env.remote(id) != nil {
			continue
		}
		delete(l.bound, id)
		delete(l.answers, id)
		if l.params.Capabilities&engine.CapUnbind == 0 {
			l.env.log.Warn("reverse forward removed; the peer cannot be told to stop listening (it predates UNBIND), so its connections are refused here until the link ends",
				"peer", l.peer, "id", id)
			continue
		}
		ctx.Send(l.sched, engine.NewUnbind(id))
	}
}

// unbind stops listening for the peer's -R with this id, at its request.
func (l *linkActor) unbind(ctx actor.Context, id uint32) {
	pid, ok := l.reverse[id]
	if !ok {
		l.env.warn("UNBIND of a reverse forward not listening here", "peer", l.peer, "id", id)
		return
	}
	ctx.Stop(pid)
	delete(l.reverse, id)
	delete(l.reverseAt, id)
	// Logged when its listener has stopped, and so closed its socket
	// (childStopped): a script that waits for the line may rely on it.
	if l.unbinding == nil {
		l.unbinding = make(map[string]uint32)
	}
	l.unbinding[pid.Id] = id
}

// Policies is a copy of the node's current policies.
func (n *Node) Policies() Policies { return *n.env.policies() }

// remoteStatus fills in ls's Remotes and Reverse: the -R of this side
// with the peer's answers in this session, and the listeners held here for
// the peer's.
func (l *linkActor) remoteStatus(ls *LinkStatus) {
	if !l.up {
		return
	}
	for i, r := range l.env.remotes() {
		if r == nil {
			continue
		}
		rs := l.answers[uint32(i+1)]
		rs.Bind, rs.Target = forwardAddr(r.Bind, r.UDP), r.Target
		ls.Remotes = append(ls.Remotes, rs)
	}
	for _, id := range slices.Sorted(maps.Keys(l.reverseAt)) {
		ls.Reverse = append(ls.Reverse, l.reverseAt[id])
	}
}
