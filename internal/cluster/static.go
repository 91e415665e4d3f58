package cluster

// The "static" cluster provider: membership for small deployments and
// tests, from a list of seeds (--cluster-seed), with no outside service.
//
// Every member probes every member it knows, once per interval, over the
// control plane (protoactor's remote, so mutual TLS with the cluster's
// key): the probe names the prober, and the answer (probe.go) the
// answerer and then the members it counts as live. So a member learns of
// members it was not given as seeds (a hub that joins later names one old
// hub as its seed; the others hear of it from that hub, or from its own
// probes), and every member converges on the same list. A member that
// fails `failures` probes in a row leaves the list; one that was not a
// seed is forgotten after three times that.
//
// With a cluster key and a link address (Config.Key and Config.Link: a
// hub serving the other hubs' links, keyed from the cluster's key), a
// probe passes only if the control plane answers and the member's hub
// link is up too: this member holds a keyed sockmux link to the link
// address each member gives in its answer (health.go), and judges the
// member by it. So health is judged over the hubs' authenticated links,
// the data path the bridges' streams take: a hub whose control plane
// answers while its link listener is dead, refuses the key or is
// blackholed fails its probes and leaves after the same failure window as
// a hub that died. Each member judges every other by its own links: what
// another member answers only tells it whom to probe. A member that
// gives no link address, when this one has hub links, never passes (every
// hub with a key serves hub links: cmd/sockmux's --cluster-hub-listen).
//
// Without a key the hubs have no links of their own (they dial each
// other's edge listener with the edges' key, which the cluster does not
// hold): the probes alone judge, over the control plane, and a hub whose
// control plane answers while its link listener does not is still
// counted live. docs/CLUSTER.md says so.
//
// protoactor blocks, for good, a member id that left the topology. A hub
// cut off for longer than the failure window is therefore not taken back
// under the same id even when it answers again: the provider tells it
// (expel.go), and it rejoins under a fresh id (rejoin.go). For the same
// reason a member is counted only once it has passed a whole probe, its
// hub link up: a hub whose link never comes up never joins, rather than
// joining and leaving at once.

import (
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// probeName is the actor on every member that answers probes.
const probeName = "sockmux-probe"

// staticProvider is the "static" cluster.ClusterProvider.
type staticProvider struct {
	seeds    []string
	interval time.Duration
	failures int
	link     string     // this member's hub-link address (Config.Link)
	health   *hubHealth // nil: judged by the control plane alone (no key, or no link)
	log      *slog.Logger

	cl    *cluster.Cluster
	self  probeMember
	probe *actor.PID
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu    sync.Mutex
	peers map[string]*peer // by the address probed
	// noLink: this member's hub-link listener closed (LinksClosed): its
	// answers name no hub-link address, so no one counts it live.
	noLink bool
	// counted is the members protoactor counts, by address, as of the
	// last publish: their ids.
	counted map[string]string
	// out is the id protoactor counted out at each address, the last one
	// (expel.go).
	out map[string]string
	// settle: until then, a member counted is not counted out for failed
	// probes (a rejoined incarnation's first seconds: expel.go).
	settle time.Time
	// onExpelled is called, without the lock, when another member says
	// it counted this one's id out and this one is the side to rejoin, or
	// when this one stood still and then counts another out (frozen.go);
	// nil does nothing.
	onExpelled func(why string)
	// frozenAt is when the clock watcher last found that this process
	// had stood still (frozen.go); zero if never.
	frozenAt time.Time
}

// peer is what a static provider knows of another member.
type peer struct {
	member *probeMember // as it last passed a probe; nil until it has
	link   string       // its hub-link address, as it last answered
	fails  int          // probes in a row it has failed
	seed   bool
	noLink bool // logged: it gives no hub-link address to judge it by
}

// newStaticProvider makes the static provider of c: with a key and a
// link address, judging the members over their hub links too.
func newStaticProvider(c Config) (*staticProvider, error) {
	p := &staticProvider{
		seeds: c.Seeds, interval: c.Probe, failures: c.ProbeFailures, link: c.Link, log: c.Logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		peers: map[string]*peer{}, counted: map[string]string{}, out: map[string]string{},
	}
	if c.Key != nil && c.Link != "" {
		key, err := HubLinkKey(c.Key, c.Name)
		if err != nil {
			return nil, err
		}
		p.health = newHubHealth(key, c.Probe, c.ProbeFailures, c.Logger)
	}
	return p, nil
}

// StartMember makes this member known and starts probing the seeds.
func (p *staticProvider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	p.cl = c
	p.self = probeMember{ID: c.ActorSystem.ID, Host: host, Port: int32(port), Kinds: c.GetClusterKinds(), Link: p.link}
	p.mu.Lock()
	for _, s := range p.seeds {
		if s == p.self.address() {
			continue
		}
		if pr := p.peers[s]; pr != nil { // remembered from a previous incarnation
			pr.seed = true
		} else {
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

// Shutdown stops probing, and closes the hub links it held.
func (p *staticProvider) Shutdown(bool) error {
	p.once.Do(func() {
		close(p.stop)
		if p.probe == nil {
			close(p.done)
		} else {
			<-p.done
			p.cl.ActorSystem.Root.Stop(p.probe)
		}
		if p.health != nil {
			p.health.close()
		}
	})
	return nil
}

// receive answers another member's probe, and remembers the prober.
func (p *staticProvider) receive(ctx actor.Context) {
	b, ok := ctx.Message().(*wrapperspb.BytesValue)
	if !ok {
		return
	}
	d, err := decodeProbe(b.GetValue(), opProbe)
	if err != nil {
		p.log.Warn("cluster: bad probe", "from", ctx.Sender(), "reason", err)
		return
	}
	addr := d.Members[0].address()
	if addr != p.self.address() {
		p.mu.Lock()
		_, known := p.peers[addr]
		if !known && len(p.peers) < maxEntries {
			p.peers[addr] = &peer{}
		}
		p.mu.Unlock()
		if !known {
			p.kick()
		}
		p.heard(d)
	}
	ctx.Respond(p.doc(opLive, addr, p.live()))
}

// kick asks for a probe round now.
func (p *staticProvider) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// linksClosed has this member's answers name no hub-link address from
// now on (hublinks.go): the members that judge it by its hub link fail
// its probes.
func (p *staticProvider) linksClosed() {
	p.mu.Lock()
	p.noLink = true
	p.mu.Unlock()
}

// live is this member, then the others that pass their probes.
func (p *staticProvider) live() []probeMember {
	p.mu.Lock()
	defer p.mu.Unlock()
	self := p.self
	if p.noLink {
		self.Link = ""
	}
	out := []probeMember{self}
	seen := map[string]bool{p.self.ID: true}
	settling := time.Now().Before(p.settle)
	for _, pr := range p.peers {
		if pr.member != nil && (pr.fails < p.failures || settling) && !seen[pr.member.ID] {
			seen[pr.member.ID] = true
			out = append(out, *pr.member)
		}
	}
	return out
}

// publish hands the live members to protoactor, which works out who
// joined and who left (and does nothing when no one did).
func (p *staticProvider) publish() {
	live := p.live()
	ms := make([]*cluster.Member, len(live))
	for i, m := range live {
		ms[i] = m.member()
	}
	p.cl.MemberList.UpdateClusterTopology(ms)
	p.noteCounted()
}

// run probes every known member once per interval, and when kicked.
func (p *staticProvider) run() {
	defer close(p.done)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		p.watchClock(p.stop)
	}()
	defer func() { <-watched }()
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
	reply *probeDoc // nil: no answer in time
}

// round probes every known member at once over the control plane, then
// judges each by its answer and, with hub links, by its link.
func (p *staticProvider) round() {
	p.mu.Lock()
	addrs := make([]string, 0, len(p.peers))
	for a := range p.peers {
		addrs = append(addrs, a)
	}
	p.mu.Unlock()
	results := make(chan probeResult, len(addrs))
	for _, a := range addrs {
		req := p.doc(opProbe, a, []probeMember{p.self})
		go func() {
			res, err := p.cl.ActorSystem.Root.RequestFuture(actor.NewPID(a, probeName), req, p.interval).Result()
			var d *probeDoc
			if b, ok := res.(*wrapperspb.BytesValue); ok && err == nil {
				if d, err = decodeProbe(b.GetValue(), opLive); err != nil {
					p.log.Debug("cluster: bad probe answer", "member", a, "reason", err)
				}
			}
			results <- probeResult{addr: a, reply: d}
		}()
	}
	answers := make([]probeResult, 0, len(addrs))
	for range addrs {
		r := <-results
		p.learn(r)
		answers = append(answers, r)
	}
	if p.health != nil {
		p.health.keep(p.links())
	}
	for _, r := range answers {
		p.judge(r)
	}
}

// learn takes what an answer tells: the members the answerer counts
// live (to probe them too), and the answerer's hub-link address.
func (p *staticProvider) learn(r probeResult) {
	if r.reply == nil {
		return
	}
	p.heard(r.reply)
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.peers[r.addr]
	if pr == nil {
		return
	}
	pr.link = r.reply.Members[0].Link
	for _, m := range r.reply.Members[1:] {
		a := m.address()
		if _, ok := p.peers[a]; !ok && a != p.self.address() && len(p.peers) < maxEntries {
			p.peers[a] = &peer{}
		}
	}
}

// links is the hub-link addresses of the members known, to hold links
// to.
func (p *staticProvider) links() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]bool{}
	for _, pr := range p.peers {
		if pr.link != "" {
			out[pr.link] = true
		}
	}
	return out
}

// judge applies one probe's outcome: passed if the member answered and,
// with hub links, its link is up.
func (p *staticProvider) judge(r probeResult) {
	// Asked before the lock: the links' events take the health's lock.
	linkUp := true
	if p.health != nil && r.reply != nil {
		linkUp = r.reply.Members[0].Link != "" && p.health.isUp(r.reply.Members[0].Link)
	}
	var stoodStill bool
	defer func() { // after the lock is let go: onExpelled takes the member's
		if stoodStill && p.onExpelled != nil {
			p.onExpelled("this hub stood still for longer than the failure window, and " + r.addr + " has not answered it since")
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.peers[r.addr]
	if pr == nil {
		return
	}
	reason := ""
	switch {
	case r.reply == nil:
		reason = "no answer"
	case !linkUp && r.reply.Members[0].Link == "":
		reason = "no hub link"
		if !pr.noLink {
			pr.noLink = true
			p.log.Warn("cluster: a member gives no hub-link address; it is not counted live", "member", r.addr)
		}
	case !linkUp:
		reason = "hub link down"
	}
	if reason == "" {
		pr.fails = 0
		m := r.reply.Members[0]
		pr.member = &m
		return
	}
	pr.fails++
	p.log.Debug("cluster: probe failed", "member", r.addr, "probes", pr.fails, "reason", reason)
	if pr.fails == p.failures && pr.member != nil {
		p.log.Warn("cluster: member failed its probes", "member", r.addr, "probes", pr.fails, "reason", reason)
		stoodStill = p.frozenLately(time.Now())
	}
	if !pr.seed && pr.fails >= 3*p.failures && !time.Now().Before(p.settle) {
		delete(p.peers, r.addr)
	}
}
