package cluster

// The "static" cluster provider: membership for small deployments and
// tests, from a list of seeds (--cluster-seed), with no outside service.
//
// Every member probes every member it knows, once per interval, over the
// control plane (protoactor's remote, so mutual TLS with the cluster's
// key): the probe is the prober's own cluster.Member, and the answer a
// cluster.ClusterTopology whose first member is the answerer and whose
// others are the members it counts as live. So a member learns of members
// it was not given as seeds (a hub that joins later names one old hub as
// its seed; the others hear of it from that hub, or from its own probes),
// and every member converges on the same list. A member that misses
// `failures` probes in a row leaves the list; one that was not a seed is
// forgotten after three times that.
//
// protoactor blocks, for good, a member id that left the topology. A hub
// cut off for longer than the failure window is therefore not taken back
// under the same id even when it answers again: it must restart (which
// gives it a new id). docs/CLUSTER.md says so.
//
// The issue asks for health over the hubs' authenticated sockmux links;
// the probes ride the control plane instead, which is as authenticated
// (the same key) but is not the data path: a hub whose control plane
// answers while its link listener does not is still counted live.

import (
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// probeName is the actor on every member that answers probes.
const probeName = "sockmux-probe"

// staticProvider is the "static" cluster.ClusterProvider.
type staticProvider struct {
	seeds    []string
	interval time.Duration
	failures int
	log      *slog.Logger

	cl    *cluster.Cluster
	self  *cluster.Member
	probe *actor.PID
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu    sync.Mutex
	peers map[string]*peer // by the address probed
}

// peer is what a static provider knows of another member.
type peer struct {
	member *cluster.Member // as it last answered; nil until it has
	fails  int             // probes in a row it has not answered
	seed   bool
}

func newStaticProvider(seeds []string, interval time.Duration, failures int, log *slog.Logger) *staticProvider {
	return &staticProvider{
		seeds: seeds, interval: interval, failures: failures, log: log,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		peers: map[string]*peer{},
	}
}

// StartMember makes this member known and starts probing the seeds.
func (p *staticProvider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	p.cl = c
	p.self = &cluster.Member{Id: c.ActorSystem.ID, Host: host, Port: int32(port), Kinds: c.GetClusterKinds()}
	p.mu.Lock()
	for _, s := range p.seeds {
		if s != p.self.Address() {
			p.peers[s] = &peer{seed: true}
		}
	}
	p.mu.Unlock()
	pid, err := c.ActorSystem.Root.SpawnNamed(actor.PropsFromFunc(p.receive), probeName)
	if err != nil {
		return err
	}
	p.probe = pid
	p.publish()
	go p.run()
	return nil
}

// StartClient is not supported: every hub is a member.
func (p *staticProvider) StartClient(*cluster.Cluster) error {
	return ErrConfig
}

// Shutdown stops probing.
func (p *staticProvider) Shutdown(bool) error {
	p.once.Do(func() {
		close(p.stop)
		if p.probe == nil {
			close(p.done)
			return
		}
		<-p.done
		p.cl.ActorSystem.Root.Stop(p.probe)
	})
	return nil
}

// receive answers another member's probe, and remembers the prober.
func (p *staticProvider) receive(ctx actor.Context) {
	m, ok := ctx.Message().(*cluster.Member)
	if !ok {
		return
	}
	if addr := m.Address(); addr != p.self.Address() && len(addr) <= maxField {
		p.mu.Lock()
		_, known := p.peers[addr]
		if !known && len(p.peers) < maxEntries {
			p.peers[addr] = &peer{}
		}
		p.mu.Unlock()
		if !known {
			p.kick()
		}
	}
	ctx.Respond(&cluster.ClusterTopology{Members: p.live()})
}

// kick asks for a probe round now.
func (p *staticProvider) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// live is this member, then the others that answer.
func (p *staticProvider) live() []*cluster.Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []*cluster.Member{p.self}
	seen := map[string]bool{p.self.Id: true}
	for _, pr := range p.peers {
		if pr.member != nil && pr.fails < p.failures && !seen[pr.member.Id] {
			seen[pr.member.Id] = true
			out = append(out, pr.member)
		}
	}
	return out
}

// publish hands the live members to protoactor, which works out who
// joined and who left (and does nothing when no one did).
func (p *staticProvider) publish() {
	p.cl.MemberList.UpdateClusterTopology(p.live())
}

// run probes every known member once per interval, and when kicked.
func (p *staticProvider) run() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.round()
		p.publish()
		select {
		case <-p.stop:
			return
		case <-t.C:
		case <-p.wake:
		}
	}
}

// probeResult is one probe's outcome.
type probeResult struct {
	addr  string
	reply *cluster.ClusterTopology // nil: no answer in time
}

// round probes every known member at once and records the answers.
func (p *staticProvider) round() {
	p.mu.Lock()
	addrs := make([]string, 0, len(p.peers))
	for a := range p.peers {
		addrs = append(addrs, a)
	}
	p.mu.Unlock()
	results := make(chan probeResult, len(addrs))
	for _, a := range addrs {
		go func() {
			res, err := p.cl.ActorSystem.Root.RequestFuture(actor.NewPID(a, probeName), p.self, p.interval).Result()
			t, _ := res.(*cluster.ClusterTopology)
			if err != nil || t == nil || len(t.Members) == 0 {
				t = nil
			}
			results <- probeResult{addr: a, reply: t}
		}()
	}
	for range addrs {
		p.record(<-results)
	}
}

// record applies one probe's outcome.
func (p *staticProvider) record(r probeResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.peers[r.addr]
	if pr == nil {
		return
	}
	if r.reply == nil {
		pr.fails++
		p.log.Debug("cluster: probe not answered", "member", r.addr, "probes", pr.fails)
		if pr.fails == p.failures && pr.member != nil {
			p.log.Warn("cluster: member stopped answering probes", "member", r.addr, "probes", pr.fails)
		}
		if !pr.seed && pr.fails >= 3*p.failures {
			delete(p.peers, r.addr)
		}
		return
	}
	pr.fails = 0
	pr.member = r.reply.Members[0]
	for _, m := range r.reply.Members[1:] {
		a := m.Address()
		if _, ok := p.peers[a]; !ok && a != p.self.Address() && len(a) <= maxField && len(p.peers) < maxEntries {
			p.peers[a] = &peer{}
		}
	}
}
