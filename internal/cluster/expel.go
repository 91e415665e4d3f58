package cluster

// What the static provider (static.go) tells other members of how its
// protoactor sees them, and what it makes of what they tell it: the
// member that finds itself counted out asks to rejoin (rejoin.go says
// why a hub must rejoin rather than wait to be counted again).

import (
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

// rejoinSettle is how long protoactor may take to reach a rejoined
// incarnation again from a member whose endpoint to its address the old
// one's going broke: two connection attempts 2 s apart (remote's
// MaxRetryCount, incarnation.go).
const rejoinSettle = 2 * 2 * time.Second

// noteCounted takes the members protoactor counts after a publish, and
// remembers, per address, the id of each member it no longer counts:
// protoactor has blocked that id for good (it blocks every member that
// leaves its topology). Only the provider's goroutines publish, one at
// a time, so the member list read here is the one just written.
func (p *staticProvider) noteCounted() {
	now := map[string]string{}
	for _, mem := range p.cl.MemberList.Members().Members() {
		now[mem.Address()] = mem.Id
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, id := range p.counted {
		if now[a] != id && a != p.self.address() {
			if _, ok := p.out[a]; !ok && len(p.out) >= maxEntries {
				clear(p.out) // bounded: a member told nothing rejoins when it is next counted out
			}
			p.out[a] = id
		}
	}
	p.counted = now
}

// doc is a probe document of kind op, to the member at addr, naming
// members: with the members counted here, and the id counted out at
// addr, if any.
func (p *staticProvider) doc(op, addr string, members []probeMember) *wrapperspb.BytesValue {
	p.mu.Lock()
	counted := make([]string, 0, len(p.counted))
	for a := range p.counted {
		counted = append(counted, a)
	}
	out := p.out[addr]
	p.mu.Unlock()
	slices.Sort(counted)
	return encodeProbe(&probeDoc{Op: op, Members: members, Counted: counted, Expelled: out})
}

// heard takes what a probe or an answer from another member says of this
// one: if that member counted this one's id out, and this is the side to
// rejoin, it asks to (onExpelled).
//
// It decides only while the sender passes this member's probes: a member
// that does not is on the far side of a cut, where the two sides' views
// change a probe apart (it may have counted this one out a probe before
// this one counts it out, which would look as if this one were the one
// left, though it is the larger side). Every probe and answer says it
// again, so the decision is only put off to one taken with both views
// settled: after the path heals, or, if this member is the one left,
// at once (it passes the other's probes all along).
func (p *staticProvider) heard(d *probeDoc) {
	sender := d.Members[0]
	if d.Expelled == "" || d.Expelled != p.self.ID {
		return
	}
	p.mu.Lock()
	pr := p.peers[sender.address()]
	if pr == nil || pr.fails > 0 || pr.member == nil || pr.member.ID != sender.ID {
		p.mu.Unlock()
		return
	}
	mutual := p.out[sender.address()] == sender.ID
	mine := make([]string, 0, len(p.counted))
	for a := range p.counted {
		mine = append(mine, a)
	}
	p.mu.Unlock()
	if mutual && !smallerSide(mine, d.Counted, p.self.address(), sender.address()) {
		// Each counted the other out, and the other side is the one to
		// come back.
		return
	}
	if p.onExpelled != nil {
		p.onExpelled("counted out by " + sender.address())
	}
}

// smallerSide reports whether this member, counting mine (its address
// self) is the side to rejoin when it and peer (counting theirs) have
// counted each other out: the side counting fewer members; at equal
// counts the side whose lowest address is higher; then the higher
// address. Both sides, from the same lists, come to opposite answers, so
// exactly one of them rejoins.
func smallerSide(mine, theirs []string, self, peer string) bool {
	if len(mine) != len(theirs) {
		return len(mine) < len(theirs)
	}
	if lm, lt := lowest(mine, self), lowest(theirs, peer); lm != lt {
		return lm > lt
	}
	return self > peer
}

// lowest is the lowest address of addrs, or def if there is none.
func lowest(addrs []string, def string) string {
	if len(addrs) == 0 {
		return def
	}
	return slices.Min(addrs)
}

// known is the members this provider knows, by address, for the next
// incarnation's provider: each with the member as it last passed a probe
// while it still counts as live, else nil.
func (p *staticProvider) known() map[string]*probeMember {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]*probeMember, len(p.peers))
	for a, pr := range p.peers {
		var m *probeMember
		if pr.member != nil && pr.fails < p.failures {
			c := *pr.member
			m = &c
		}
		out[a] = m
	}
	return out
}

// remember makes the members a previous incarnation knew (known's) known
// here before the first probe: probed as the seeds are (though forgotten
// as any member that is not a seed is, if they stop answering), and
// those it counted counted at once, so a rejoining hub goes on counting
// the members it did (a probe judges them from then on) instead of
// counting itself alone until they pass one.
//
// A rejoined incarnation (known not nil) also settles for a while: it
// counts no member out for failed probes until rejoinSettle plus the
// failure window have passed. The other members' control planes reach it
// through protoactor endpoints that the previous incarnation's going
// broke; protoactor redials one after 2 s, twice, before it makes a new
// one, so their answers can be late for seconds. Counted out meanwhile,
// a member would be blocked here for good and told so, and would rejoin
// in turn, for nothing (seen in TestRejoinAfterCutOff before this).
func (p *staticProvider) remember(known map[string]*probeMember) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if known != nil {
		p.settle = time.Now().Add(rejoinSettle + p.interval*time.Duration(p.failures))
	}
	for a, m := range known {
		pr := p.peers[a]
		if pr == nil {
			if len(p.peers) >= maxEntries {
				continue
			}
			pr = &peer{}
			p.peers[a] = pr
		}
		pr.member = m
		if m != nil {
			pr.link = m.Link
		}
	}
}
