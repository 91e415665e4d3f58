package cluster

// The directory grain: one virtual actor, of kind directoryKind, that
// lists which hub holds which reverse forward.
//
// protoactor places it (disthash: rendezvous hashing of its identity over
// the members) and starts it on first use. When the membership changes,
// the owner may change: the old activation is stopped and a new one
// starts empty on the new owner. So its state is soft: every hub sends
// its own entries again after each membership change it sees (Member's
// loop), and at every refresh, and the directory is whole again once they
// have. One grain holds the whole directory because it is small (hubs ×
// binds) and every hub needs all of it; a hub's whole set travels in one
// sync message, which is what Register, Unregister and the re-registering
// all send, so a message lost or repeated costs nothing; each is numbered,
// and one older than the hub's registration held is ignored (table.go),
// so one that comes late costs nothing either.
//
// When the directory changes, and whenever its member sees the membership
// change, the grain pushes it to the watcher actor of every member
// (watcherName); it drops the entries of hubs no longer in the membership
// as soon as its member sees them leave.

import (
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	// directoryKind is the grain's kind; directoryIdentity its one
	// identity.
	directoryKind     = "sockmux-directory"
	directoryIdentity = "directory"
	// watcherName is the actor on every member that takes the
	// directory's pushes.
	watcherName = "sockmux-directory-watch"
)

// directoryGrain is the directory's activation on the member that owns it.
type directoryGrain struct {
	m   *Member // the member it runs on, which knows the membership
	cl  *cluster.Cluster
	tab table
	sub *eventstream.Subscription
}

// directoryKindOf is the grain's kind for cluster.WithKinds, on member m.
func directoryKindOf(m *Member) *cluster.Kind {
	return cluster.NewKind(directoryKind, actor.PropsFromProducer(func() actor.Actor {
		return &directoryGrain{m: m}
	}))
}

// Receive handles the grain's messages.
func (g *directoryGrain) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.cl = msg.Cluster
		self := ctx.Self()
		root := g.cl.ActorSystem.Root
		// Topology events arrive on the member's event stream, in the
		// publisher's goroutine: hand them to the grain as messages.
		g.sub = g.cl.ActorSystem.EventStream.Subscribe(func(ev any) {
			if t, ok := ev.(*cluster.ClusterTopology); ok {
				root.Send(self, t)
			}
		})
	case *actor.Stopping:
		if g.sub != nil {
			g.cl.ActorSystem.EventStream.Unsubscribe(g.sub)
		}
	case *cluster.ClusterTopology:
		g.prune(ctx, msg.Members)
	case *wrapperspb.BytesValue:
		g.request(ctx, msg.GetValue())
	}
}

// request answers one member's sync or list.
func (g *directoryGrain) request(ctx actor.Context, b []byte) {
	m, err := decode(b)
	if err != nil {
		g.m.log.Warn("cluster: bad directory request", "from", ctx.Sender(), "reason", err)
		ctx.Respond(encode(&message{Op: opError, Error: err.Error()}))
		return
	}
	switch m.Op {
	case opSync:
		if !g.m.isLive(m.Hub) {
			// A hub that left (or that this member has not yet seen
			// join) would leave entries no prune removes: it sends them
			// again once the membership has settled.
			ctx.Respond(encode(&message{Op: opError, Error: "hub " + m.Hub + " is not a member here"}))
			return
		}
		changed, stale := g.tab.put(m.Hub, m.Version, m.Entries)
		if stale {
			g.m.log.Debug("cluster: an older registration ignored", "hub", m.Hub, "version", m.Version)
		}
		if changed {
			g.push(ctx)
		}
	case opList:
	default:
		ctx.Respond(encode(&message{Op: opError, Error: "not a request: " + m.Op}))
		return
	}
	ctx.Respond(g.directory())
}

// prune drops the entries of hubs not among members, and pushes the
// directory to them all.
func (g *directoryGrain) prune(ctx actor.Context, members []*cluster.Member) {
	live := map[string]bool{}
	for _, m := range members {
		live[m.Address()] = true
	}
	dropped := g.tab.drop(func(hub string) bool { return live[hub] })
	if dropped > 0 {
		g.m.log.Info("cluster: directory dropped the entries of hubs that left", "entries", dropped)
	}
	// Pushed whatever changed: a member that joined may have missed a
	// push that went out before the grain's member counted it.
	g.push(ctx)
}

// directory is the grain's answer and push: every entry, and the version
// of every hub's registration.
func (g *directoryGrain) directory() any {
	return encode(&message{Op: opEntries, Entries: g.tab.list(), Versions: g.tab.versions()})
}

// push sends the directory to the watcher of every member.
func (g *directoryGrain) push(ctx actor.Context) {
	msg := g.directory()
	for _, addr := range g.m.liveAddrs() {
		ctx.Send(actor.NewPID(addr, watcherName), msg)
	}
}

// sortEntries puts entries in the directory's order: by bind, then hub.
func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		if c := strings.Compare(a.Bind, b.Bind); c != 0 {
			return c
		}
		return strings.Compare(a.Hub, b.Hub)
	})
}
