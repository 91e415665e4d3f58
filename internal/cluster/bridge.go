package cluster

// The bridge: what makes a bind held at one hub work at every hub. For
// each entry of the directory held elsewhere (and not here), this hub
// listens on the same address (mapped through its own --remote-bind-addr,
// within its own --allow-listen) and carries each connection, over an
// ordinary sockmux link to the holding hub, as a stream whose target is
// the address the holder listens on for it: the holder dials that, its
// own pool or edge's listener, which hands the connection to an edge. One
// hop between hubs, at most; the control plane never carries data.
//
// Each peer hub the bridge routes to gets one actors.Node, dialling that
// hub's link address (Entry.Link) with the hubs' link key, kept while
// some route goes there. A route listens only while its link is up: when
// the holder dies its link drops at once, and the bridge lets go of the
// address before the directory has dropped the holder's entries, so an
// edge failing over to this hub can bind it here.

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
)

// BridgeConfig is how a hub bridges the binds other hubs hold.
type BridgeConfig struct {
	// Key is the key of the links between hubs (the hubs' --key-file):
	// a hub accepts links from other hubs on the listener its edges use.
	Key []byte
	// RemoteBindAddr is this hub's --remote-bind-addr: a bind for all
	// addresses is bound on this host here ("" : on all addresses).
	RemoteBindAddr string
	// AllowListen is this hub's --allow-listen: binds it does not allow
	// are not bridged here.
	AllowListen *forward.TargetPolicy
	// Logger takes the bridge's logs (nil: discarded).
	Logger *slog.Logger
}

// Bridge binds, at this hub, the binds other hubs hold.
type Bridge struct {
	cfg  BridgeConfig
	m    *Member
	log  *slog.Logger
	kick chan struct{}
	done chan struct{}

	mu     sync.Mutex
	up     map[string]bool // peer hubs whose link is up
	closed bool

	// The loop's own (no lock): peer nodes and the routes listening.
	peers  map[string]*actors.Node // by hub
	routes map[routeKey]route      // by what is listened on here
	warned map[string]bool         // binds refused here, logged once
}

// route is one bind bridged: listened on here, carried to hub.
type route struct {
	hub, link, target string
}

// routeKey is what a route listens on here: an address, for streams or
// for datagrams (a UDP -R is bridged as a UDP forward: each client
// address a datagram stream to the holder, which sends its datagrams on
// to the bind from a socket of its own).
type routeKey struct {
	local string
	udp   bool
}

// String is the address as logged: "host:port" or "host:port/udp".
func (k routeKey) String() string {
	return actors.ForwardKey(forward.Forward{Bind: k.local, UDP: k.udp})
}

// forward is the forward that listens for route r here.
func (k routeKey) forward(r route) forward.Forward {
	return forward.Forward{Bind: k.local, Target: r.target, UDP: k.udp}
}

// NewBridge starts bridging m's directory; it stops when m closes.
func NewBridge(m *Member, cfg BridgeConfig) *Bridge {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AllowListen == nil {
		cfg.AllowListen = forward.LoopbackTargets
	}
	b := &Bridge{cfg: cfg, m: m, log: cfg.Logger, kick: make(chan struct{}, 1), done: make(chan struct{}),
		up: map[string]bool{}, peers: map[string]*actors.Node{}, routes: map[routeKey]route{}, warned: map[string]bool{}}
	go b.loop(m.Watch())
	return b
}

// Close stops the bridge: its listeners and its links to other hubs.
func (b *Bridge) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.kick)
	}
	b.mu.Unlock()
	<-b.done
}

// loop applies each directory it is given, and again when a link to a
// peer hub comes up or goes down.
func (b *Bridge) loop(dir <-chan []Entry) {
	defer close(b.done)
	var entries []Entry
	for {
		select {
		case es, ok := <-dir:
			if !ok {
				b.apply(nil)
				return
			}
			entries = es
		case _, ok := <-b.kick:
			if !ok {
				b.apply(nil)
				return
			}
		}
		b.apply(entries)
	}
}

// localAddr is where this hub listens for asked, a bind's address as the
// edge asked for it, as actors.Node would for a BIND (bindAddr).
func (b *Bridge) localAddr(asked string) string {
	host, port, err := net.SplitHostPort(asked)
	if err != nil {
		return asked
	}
	switch host {
	case "", "*", "0.0.0.0", "::":
		if b.cfg.RemoteBindAddr != "" {
			return net.JoinHostPort(b.cfg.RemoteBindAddr, port)
		}
		return net.JoinHostPort("", port)
	}
	return asked
}

// holderTarget is what the holder dials for a stream of e: the address
// it listens on, loopback where that is all of them.
func holderTarget(e Entry) string {
	host, port, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return e.Addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return e.Addr
}

// want is the routes the directory asks for: for each TCP or UDP bind
// held elsewhere and not here, the holder with the most members (then the
// lowest id), if its link is up.
func (b *Bridge) want(entries []Entry) map[routeKey]route {
	self := b.m.ID()
	heldHere := map[string]bool{}
	for _, e := range entries {
		if e.Hub == self {
			heldHere[e.Bind] = true
		}
	}
	best := map[routeKey]Entry{}
	for _, e := range entries {
		proto, asked, ok := strings.Cut(e.Bind, "/")
		if !ok || proto != "tcp" && proto != "udp" || e.Hub == self || heldHere[e.Bind] || e.Link == "" || e.Addr == "" {
			continue
		}
		local := b.localAddr(asked)
		if !b.cfg.AllowListen.Allows(local) {
			if !b.warned[e.Bind] {
				b.warned[e.Bind] = true
				b.log.Warn("cluster: a bind of another hub is not bridged here: not allowed by --allow-listen", "bind", e.Bind, "listen", local, "hub", e.Hub)
			}
			continue
		}
		k := routeKey{local: local, udp: proto == "udp"}
		if o, ok := best[k]; !ok || e.Members > o.Members || e.Members == o.Members && e.Hub < o.Hub {
			best[k] = e
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[routeKey]route{}
	for k, e := range best {
		r := route{hub: e.Hub, link: e.Link, target: holderTarget(e)}
		if _, ok := b.peers[e.Hub]; !ok || b.up[e.Hub] {
			out[k] = r // a hub with no link yet gets one below
		}
	}
	return out
}

// apply makes the routes listening what entries ask for.
func (b *Bridge) apply(entries []Entry) {
	want := b.want(entries)
	for k, r := range b.routes {
		if w, ok := want[k]; !ok || w != r {
			b.peers[r.hub].RemoveForward(actors.ForwardKey(k.forward(r)))
			delete(b.routes, k)
			b.log.Info("cluster: bind no longer bridged", "listen", k, "hub", r.hub)
		}
	}
	needed := map[string]bool{}
	for k, r := range want {
		needed[r.hub] = true
		if _, ok := b.routes[k]; ok {
			continue
		}
		n, err := b.peer(r.hub, r.link)
		if err != nil {
			b.log.Warn("cluster: no link to the holding hub", "hub", r.hub, "link", r.link, "reason", err)
			continue
		}
		if !b.isUp(r.hub) {
			continue // listens once the link is up
		}
		if err := n.AddForward(k.forward(r)); err != nil {
			b.log.Warn("cluster: could not bridge a bind of another hub", "listen", k, "hub", r.hub, "reason", err)
			continue
		}
		b.routes[k] = r
		b.log.Info("cluster: bridging a bind of another hub", "listen", k, "hub", r.hub, "target", r.target)
	}
	for hub, n := range b.peers {
		if !needed[hub] {
			n.Shutdown(0)
			delete(b.peers, hub)
			b.mu.Lock()
			delete(b.up, hub)
			b.mu.Unlock()
		}
	}
}

// isUp reports whether the link to hub is up.
func (b *Bridge) isUp(hub string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.up[hub]
}

// peer is the node linking this hub to hub, made (and dialling link) on
// first use.
func (b *Bridge) peer(hub, link string) (*actors.Node, error) {
	if n, ok := b.peers[hub]; ok {
		return n, nil
	}
	d, err := carriers.NewDialer(link)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrEntry, link, err)
	}
	n, err := actors.NewNode(actors.Config{
		Key: b.cfg.Key, Logger: b.log.With("hub", hub),
		// A hub gone is a route gone (its link down, the route with it),
		// not a link to keep for resuming: the edges move elsewhere.
		ResumeWindow: -1,
		// The holder asks nothing of this side: no -R, no targets.
		AllowListen: forward.MustTargetPolicy(), AllowTargets: forward.MustTargetPolicy(),
		OnLink: func(ev actors.LinkEvent) { b.linkEvent(hub, ev.Up) },
	})
	if err != nil {
		return nil, err
	}
	n.Connect(d)
	b.peers[hub] = n
	return n, nil
}

// linkEvent notes a link to a peer hub going up or down, and has the
// loop apply the directory again; it is called from the node's actors.
func (b *Bridge) linkEvent(hub string, up bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.up[hub] = up
	select {
	case b.kick <- struct{}{}:
	default:
	}
}
