package cluster

// The bridge: what makes a bind held at some hubs work at every hub, and
// spread over the edges holding it wherever they are linked.
//
// A TCP bind (pooled or not) is a pool at every hub (actors.Node's pools,
// pool_peers.go there): at a hub holding some of its edges, beside them;
// at a hub holding none, alone, listening on the same address (mapped
// through this hub's --remote-bind-addr, within its --allow-listen). The
// bridge gives the pool a share for every other hub the directory says
// holds the bind, weighed by the edges it holds there; a connection the
// pool sends to a share is carried, over an ordinary sockmux link to that
// hub, as a stream whose target is the address the holder listens on for
// the bind, and the holder hands it in process to one of its own edges
// (actors' splice.go), never on to a third hub. One hop between hubs, at
// most; the control plane never carries data.
//
// A pooled UDP bind is a UDP pool at every hub in the same way: a share
// for every other hub holding some of its edges, a flow (one client
// address's datagrams) given to a share carried as a datagram stream to
// that hub whose target is the pool's door there (Entry.Door: a loopback
// socket whose flows go to that hub's own edges only, actors'
// pool_udp.go), so a flow too crosses one hop at most. A UDP bind of one
// edge (no pool) is bridged as before pools: a UDP forward to one holder
// (the one with the most members, then the lowest id), whose node sends
// each client's datagrams on to its own bind from a socket of its own.
//
// Each peer hub the bridge routes to gets one actors.Node, dialling that
// hub's link address (Entry.Link) with the hubs' link key, kept while
// some route goes there. A share or a route is there only while its link
// is up: when a holder dies its link drops at once, and the bridge drops
// its share (closing the pool, if it was the last and no edge here holds
// it) before the directory has dropped the holder's entries, so an edge
// failing over to this hub can bind the address here.

import (
	"bytes"
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
	node   *actors.Node    // this hub's own node, where the pools are (Attach)
	next   *BridgeConfig   // SetConfig's, for the loop to take
	closed bool

	// The loop's own (no lock): peer nodes, the UDP routes listening and
	// the shares given to the pools.
	peers  map[string]*actors.Node // by hub
	routes map[routeKey]route      // by what is listened on here
	pools  map[routeKey]poolRoute  // by what the pool listens on here
	warned map[string]bool         // binds refused here, logged once
}

// route is one UDP bind bridged: listened on here, carried to hub.
type route struct {
	hub, link, target string
}

// routeKey is what a UDP route listens on here: an address, for
// datagrams (a UDP -R is bridged as a UDP forward: each client address a
// datagram stream to the holder, which sends its datagrams on to the
// bind from a socket of its own).
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
		up: map[string]bool{}, peers: map[string]*actors.Node{}, routes: map[routeKey]route{}, pools: map[routeKey]poolRoute{},
		warned: map[string]bool{}}
	dir, unwatch := m.Watch()
	go b.loop(dir, unwatch)
	return b
}

// Attach gives the bridge this hub's own node, whose pools it gives the
// other hubs' shares of their binds (and where it listens for the binds
// no edge holds here). Until then only UDP binds are bridged.
func (b *Bridge) Attach(n *actors.Node) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.node = n
	b.kickLocked()
}

// SetConfig has the bridge bridge by cfg from now on (its Logger aside,
// which stays): under `sockmux run`, a reload that changes the
// allow-listen, the remote-bind-addr or the key of the link the bridge
// takes its settings from. The binds cfg no longer allows stop being
// bridged here, those it now allows start, and the links to other hubs
// dial with cfg's key from now on (those waiting to redial, at once); the
// links up and the bridges' streams open stay as they are.
func (b *Bridge) SetConfig(cfg BridgeConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.next = &cfg
	b.kickLocked()
}

// reconfigure takes what SetConfig gave, if anything; the loop calls it.
func (b *Bridge) reconfigure() {
	b.mu.Lock()
	next := b.next
	b.next = nil
	b.mu.Unlock()
	if next == nil {
		return
	}
	next.Logger = b.cfg.Logger
	if next.AllowListen == nil {
		next.AllowListen = forward.LoopbackTargets
	}
	if !bytes.Equal(next.Key, b.cfg.Key) {
		// A link the old key could not bring up is waiting out its
		// backoff: it dials now, with the new key.
		for _, n := range b.peers {
			n.SetPolicies(peerPolicies(next.Key))
			n.Redial()
		}
	}
	b.cfg = *next
	// What was refused and logged may be allowed now, or refused for
	// another reason: say it again.
	clear(b.warned)
	b.log.Info("cluster: the bridge takes new settings", "allow_listen", b.cfg.AllowListen.String(), "remote_bind_addr", b.cfg.RemoteBindAddr)
}

// kickLocked has the loop apply the directory again; b.mu is held.
func (b *Bridge) kickLocked() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
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
// peer hub comes up or goes down. When it ends it stops watching: a
// bridge closed while the member runs (under `sockmux run`, a reload
// moving the bridge to another link's node) must not leave the member
// handing its watch every directory to come.
func (b *Bridge) loop(dir <-chan []Entry, unwatch func()) {
	defer close(b.done)
	defer unwatch()
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
		b.reconfigure()
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

// wanted is what the directory asks of this hub: the UDP routes, and
// the shares of each pool (every TCP bind's, and every pooled UDP
// bind's); hubs are the peer hubs they name (with their link addresses),
// whose links are needed.
type wanted struct {
	routes map[routeKey]route
	pools  map[routeKey]poolRoute
	hubs   map[string]string
}

// want reads the directory: for each TCP bind and each pooled UDP bind
// held elsewhere, the shares of its pool here (unless an edge here holds
// it outside a pool, which no share can join); for each other UDP bind
// held elsewhere and not here, the holder with the most members (then the
// lowest id).
func (b *Bridge) want(entries []Entry) wanted {
	self := b.m.ID()
	own := map[string]Entry{}
	for _, e := range entries {
		if e.Hub == self {
			own[e.Bind] = e
		}
	}
	w := wanted{routes: map[routeKey]route{}, pools: map[routeKey]poolRoute{}, hubs: map[string]string{}}
	best := map[routeKey]Entry{}
	for _, e := range entries {
		proto, asked, ok := strings.Cut(e.Bind, "/")
		if !ok || proto != "tcp" && proto != "udp" || e.Hub == self || e.Link == "" || e.Addr == "" {
			continue
		}
		// A UDP bind is pooled across hubs when its holder has a door for
		// other hubs' flows (a hub from before UDP pools has none).
		pooled := proto == "tcp" || e.Pool != "" && e.Door != ""
		mine, heldHere := own[e.Bind]
		if heldHere && (mine.Pool == "" || !pooled) {
			continue
		}
		local := b.localAddr(asked)
		if !b.cfg.AllowListen.Allows(local) {
			b.warnOnce(e.Bind, "cluster: a bind of another hub is not bridged here: not allowed by --allow-listen", "bind", e.Bind, "listen", local, "hub", e.Hub)
			continue
		}
		k := routeKey{local: local, udp: proto == "udp"}
		if pooled {
			pr, ok := w.pools[k]
			if !ok {
				pr.name = e.Pool
				if heldHere {
					pr.name = mine.Pool
				}
			}
			if e.Pool != pr.name {
				b.warnOnce("pool:"+e.Bind+"\x00"+e.Hub, "cluster: a bind of another hub is in another pool than here: not shared",
					"bind", e.Bind, "hub", e.Hub, "pool", e.Pool, "here", pr.name)
				continue
			}
			target := holderTarget(e)
			if k.udp {
				target = e.Door
			}
			pr.shares = append(pr.shares, share{hub: e.Hub, target: target, members: e.Members})
			w.pools[k] = pr
			w.hubs[e.Hub] = e.Link
			continue
		}
		if o, ok := best[k]; !ok || e.Members > o.Members || e.Members == o.Members && e.Hub < o.Hub {
			best[k] = e
		}
	}
	for k, e := range best {
		if _, ok := w.pools[k]; ok {
			continue // other hubs pool it: the pool listens here, not a route
		}
		w.routes[k] = route{hub: e.Hub, link: e.Link, target: holderTarget(e)}
		w.hubs[e.Hub] = e.Link
	}
	return w
}

// warnOnce logs msg the first time key comes up.
func (b *Bridge) warnOnce(key, msg string, args ...any) {
	if !b.warned[key] {
		b.warned[key] = true
		b.log.Warn(msg, args...)
	}
}

// apply makes the routes listening and the pools' shares what entries
// ask for, as far as the links to the peer hubs are up.
func (b *Bridge) apply(entries []Entry) {
	w := b.want(entries)
	for hub, link := range w.hubs {
		if _, err := b.peer(hub, link); err != nil {
			b.warnOnce("link:"+hub+"\x00"+link, "cluster: no link to the holding hub", "hub", hub, "link", link, "reason", err)
		}
	}
	b.applyRoutes(w.routes)
	b.applyPools(w.pools)
	for hub, n := range b.peers {
		if _, ok := w.hubs[hub]; !ok {
			n.Shutdown(0)
			delete(b.peers, hub)
			b.mu.Lock()
			delete(b.up, hub)
			b.mu.Unlock()
		}
	}
}

// applyRoutes makes the UDP routes listening what want asks for, those
// whose link is up.
func (b *Bridge) applyRoutes(want map[routeKey]route) {
	for k, r := range b.routes {
		if w, ok := want[k]; !ok || w != r || !b.isUp(r.hub) {
			b.peers[r.hub].RemoveForward(actors.ForwardKey(k.forward(r)))
			delete(b.routes, k)
			b.log.Info("cluster: bind no longer bridged", "listen", k.String(), "hub", r.hub)
		}
	}
	for k, r := range want {
		n, ok := b.peers[r.hub]
		if _, done := b.routes[k]; done || !ok || !b.isUp(r.hub) {
			continue // listens once the link is up
		}
		if err := n.AddForward(k.forward(r)); err != nil {
			b.log.Warn("cluster: could not bridge a bind of another hub", "listen", k.String(), "hub", r.hub, "reason", err)
			continue
		}
		b.routes[k] = r
		b.log.Info("cluster: bridging a bind of another hub", "listen", k.String(), "hub", r.hub, "target", r.target)
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
	p := peerPolicies(b.cfg.Key)
	n, err := actors.NewNode(actors.Config{
		Key: p.Key, Logger: b.log.With("hub", hub),
		// A hub gone is a route gone (its link down, the route with it),
		// not a link to keep for resuming: the edges move elsewhere.
		ResumeWindow: -1,
		AllowListen:  p.AllowListen, AllowTargets: p.AllowTargets,
		OnLink: func(ev actors.LinkEvent) { b.linkEvent(hub, ev.Up) },
	})
	if err != nil {
		return nil, err
	}
	n.Connect(d)
	b.peers[hub] = n
	return n, nil
}

// peerPolicies are a peer node's: the key to dial with, and nothing the
// holder may ask of this side (no -R, no targets).
func peerPolicies(key []byte) actors.Policies {
	return actors.Policies{Key: key, AllowListen: forward.MustTargetPolicy(), AllowTargets: forward.MustTargetPolicy()}
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
	b.kickLocked()
}
