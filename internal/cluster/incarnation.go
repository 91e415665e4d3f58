package cluster

// One incarnation of this hub's protoactor member: the actor system, the
// cluster on it, its provider and the subscription to its topology.
//
// protoactor names a member by its actor system's id (a fresh random id
// per actor system) and blocks, for good, an id that left the topology
// (rejoin.go says why that matters). So a hub that must be counted again
// after the others counted it out needs a new actor system, a new
// cluster and a new provider: a new incarnation. Everything of sockmux's
// own (the hub's id, which is its control-plane address, its entries,
// the directory as it last saw it, the watchers of Watch and WatchHubs)
// is the Member's and outlives every incarnation.

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"
)

// incarnation is one protoactor member of this hub.
type incarnation struct {
	sys      *actor.ActorSystem
	cl       *cluster.Cluster
	provider cluster.ClusterProvider
	topoSub  *eventstream.Subscription
	// rejoined: it took the place of one found expelled (rejoin.go).
	rejoined bool
	// told: it was found expelled (m.mu): the loop replaces it, unless
	// the hub is withdrawn.
	told bool
	// sawSelf: a topology of its own listed it (m.mu; selfGone).
	sawSelf bool
}

// selfGone reports, with m.mu held, whether t is the first topology
// without this incarnation's own member after one with it: how the etcd
// provider (and any other that watches its own registration) shows a hub
// counted out. When a hub stops answering for longer than its lease (a
// SIGSTOP, a partition from etcd), etcd drops its key; the others count
// it out and block its id for good (rejoin.go), and its own provider,
// which watches the same keys, takes itself out of its own topology; its
// keepalive then puts the same id back, which the others ignore. So the
// hub is never counted again under that id, and without this it stays
// out until restarted. The static provider has a word of its own for
// this (probes' "expelled", expel.go) and is left to it: a static
// member's own topology is not the provider's registration.
func (inc *incarnation) selfGone(t *cluster.ClusterTopology) bool {
	if _, static := inc.provider.(*staticProvider); static {
		return false
	}
	// By address: each provider names members its own way (etcd's
	// "NAME@ID"), and an incarnation's address is its own.
	self := inc.sys.Address()
	for _, mem := range t.Members {
		if mem.Address() == self {
			inc.sawSelf = true
			return false
		}
	}
	return inc.sawSelf
}

// incarnate starts a protoactor member for m with its control plane
// listening at bind, and makes it m's current incarnation. known are
// members a previous incarnation's static provider knew, which the new
// one probes besides the seeds (staticProvider.remember).
func (m *Member) incarnate(bind string, known map[string]*probeMember) (*incarnation, error) {
	cfg := m.cfg
	host, port, _ := splitHostPort("--cluster-bind", bind)
	var opts []remote.ConfigOption
	server := recovering(cfg.Logger)
	if cfg.Key != nil {
		creds, err := deriveCredentials(cfg.Key, cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("--cluster-key: %w", err)
		}
		server = append(server, grpc.Creds(grpccreds.NewTLS(creds.server)))
		opts = append(opts, remote.WithDialOptions(grpc.WithTransportCredentials(grpccreds.NewTLS(creds.client))))
	}
	opts = append(opts, remote.WithServerOptions(server...))
	if cfg.Advertise != "" {
		opts = append(opts, remote.WithAdvertisedHost(cfg.Advertise))
	}
	rcfg := remote.Configure(host, port, opts...)
	// A member that is gone is found by the provider; the remote's
	// endpoint need not spend long redialling it (2 s per try).
	rcfg.MaxRetryCount = 2
	provider, err := newProvider(cfg)
	if err != nil {
		return nil, err
	}
	inc := &incarnation{provider: provider, rejoined: known != nil}
	sp, static := provider.(*staticProvider)
	if static {
		sp.remember(known)
		sp.onExpelled = func(why string) { m.expelled(inc, why) }
	}
	lib := slog.New(libLog{cfg.Logger.Handler()}).With("lib", "protoactor")
	inc.sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return lib }))
	ccfg := cluster.Configure(cfg.Name, provider, disthash.New(), rcfg,
		cluster.WithKinds(directoryKindOf(m)), cluster.WithRequestTimeout(cfg.RequestTimeout))
	inc.cl = cluster.New(inc.sys, ccfg)
	inc.topoSub = inc.sys.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*cluster.ClusterTopology); ok {
			m.topology(inc, t)
		}
	})
	if _, err := inc.sys.Root.SpawnNamed(actor.PropsFromFunc(m.receivePush), watcherName); err != nil {
		inc.sys.Shutdown()
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	// Current before it starts: its first topology is published while it
	// starts, and must be taken. A hub withdrawn (LinksClosed) before,
	// or while none was current, stays withdrawn in it: under the same
	// lock as LinksClosed's, so neither misses the other.
	m.mu.Lock()
	m.inc = inc
	if static && m.withdrawn {
		sp.linksClosed()
	}
	m.mu.Unlock()
	if err := startMember(inc.cl); err != nil {
		m.mu.Lock()
		m.inc = nil
		m.mu.Unlock()
		inc.sys.EventStream.Unsubscribe(inc.topoSub)
		inc.sys.Shutdown()
		return nil, err
	}
	return inc, nil
}

// startMember runs protoactor's StartMember, which panics where it could
// have returned an error (its remote cannot listen, its provider fails).
func startMember(c *cluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrStart, r)
			// What started of it is stopped as far as it can be.
			func() {
				defer func() { _ = recover() }()
				if c.Remote != nil {
					c.Remote.Shutdown(false)
				}
			}()
		}
	}()
	c.StartMember()
	return nil
}

// stop ends the incarnation: graceful leaves (the provider deregisters,
// protoactor lets the grains hand over, a few seconds), otherwise it
// vanishes as a killed hub would.
func (inc *incarnation) stop(graceful bool) {
	inc.sys.EventStream.Unsubscribe(inc.topoSub)
	if graceful {
		inc.cl.Shutdown(true)
		return
	}
	_ = inc.provider.Shutdown(false)
	inc.cl.Remote.Shutdown(false)
	inc.sys.Shutdown()
}

// retire ends an incarnation a rejoin replaces: gracefully, as stop(true)
// does (so nothing of it is left running), but with its control plane's
// server stopped first. protoactor's graceful stop of its gRPC server
// waits, up to 10 s, for every stream into it to end, and the other
// members keep theirs open until they give up on this address: a rejoin
// would wait for them (seen taking 9 s and more after a SIGSTOP), where
// the old id has no one left to talk to. Stopped first, the server frees
// the port for the next incarnation at once, and the graceful stop that
// follows finds nothing to wait for (gRPC's GracefulStop after Stop
// returns at once); what is left is protoactor's 2 s for the grains to
// hand over.
func (inc *incarnation) retire() {
	inc.sys.EventStream.Unsubscribe(inc.topoSub)
	inc.cl.Remote.Shutdown(false)
	inc.cl.Shutdown(true)
}

// known is the members the incarnation's provider knew, for the next
// one's (a static provider's only).
func (inc *incarnation) known() map[string]*probeMember {
	if sp, ok := inc.provider.(*staticProvider); ok {
		return sp.known()
	}
	return nil
}

// rebindAddr is where a new incarnation's control plane listens: Bind,
// with the port the first one listened on when Bind's port is 0 (so the
// hub's address, its id, stays the same), unless the address is
// advertised (the port listened on is not known then).
func (m *Member) rebindAddr() string {
	host, port, _ := splitHostPort("--cluster-bind", m.cfg.Bind)
	if port != 0 || m.cfg.Advertise != "" {
		return m.cfg.Bind
	}
	if _, p, err := net.SplitHostPort(m.addr); err == nil {
		return net.JoinHostPort(host, p)
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
