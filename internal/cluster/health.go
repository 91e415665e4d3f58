package cluster

// Hub-link health: what the static provider (static.go) asks, besides
// the control plane's answer, before it counts a member live, when the
// cluster has a key and so its hubs have links of their own.
//
// For every member it probes, the provider keeps one sockmux link to the
// member's hub-link address (Config.Link: the listener a hub serves the
// other hubs' links on, actors.Node.ServeKeyed, keyed from the cluster's
// key by HubLinkKey) and asks here whether that link is up. The link is
// an ordinary dialling actors.Node that asks nothing of the hub (no -R,
// no streams), so the member's health is judged on the very path the
// bridges' streams take, by the engine's own liveness:
//
//   - a hub whose link listener is gone (its node closed, the port
//     refused) resets the link, and every redial fails: down at once;
//   - a hub or a path that goes silent (a blackhole, a wedged node) is
//     found by the link's PINGs: no frame at all for engine.SilentTicks
//     keepalives, each a third of the probe interval, so about one probe
//     interval, and the link drops;
//   - a listener that accepts but never completes the keyed handshake (a
//     wrong key, a stuck node, something else on the port) never brings
//     the link up: each attempt gives up after the failure window (so a
//     slow but working path has all of it to answer; the link is down,
//     and the probes fail, meanwhile either way), and the next is one
//     probe interval later.
//
// One link held up, rather than a handshake each interval: a fresh link
// every second to every member would make every hub log a link up and
// down per member per second, and cost a Noise handshake each; a held link
// costs a PING frame. What it cannot see is a listener closed while the
// node behind it keeps answering on the link already up: that hub tells
// on itself instead (hublinks.go: it withdraws, and its answers name no
// hub-link address, so its probes fail here).
//
// The links are this package's own, apart from the bridge's (which holds
// links only to the hubs it routes to): every member is watched, whether
// or not it holds anything.

import (
	"log/slog"
	"sync"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
)

// hubHealth holds a keyed link to each member's hub-link address.
type hubHealth struct {
	key      []byte        // HubLinkKey's
	interval time.Duration // the probes'
	window   time.Duration // the failure window: interval × failures
	log      *slog.Logger

	// links is touched by the provider's probe loop alone (keep, close).
	links map[string]*actors.Node // by hub-link address

	mu     sync.Mutex
	up     map[string]bool // hub-link addresses whose link is up
	bad    map[string]bool // addresses no dialler takes, logged once
	closed bool
}

func newHubHealth(key []byte, interval time.Duration, failures int, log *slog.Logger) *hubHealth {
	return &hubHealth{key: key, interval: interval, window: interval * time.Duration(failures), log: log,
		links: map[string]*actors.Node{}, up: map[string]bool{}, bad: map[string]bool{}}
}

// keep makes the links held those to addrs: a link is dialled to each
// address not held yet, and those to addresses no longer named are
// closed.
func (h *hubHealth) keep(addrs map[string]bool) {
	for a, n := range h.links {
		if !addrs[a] {
			n.Close()
			delete(h.links, a)
			h.mu.Lock()
			delete(h.up, a)
			h.mu.Unlock()
		}
	}
	for a := range addrs {
		if _, ok := h.links[a]; ok || h.bad[a] {
			continue
		}
		n, err := h.dial(a)
		if err != nil {
			h.bad[a] = true // a member keeps naming it: once is enough
			h.log.Warn("cluster: a member's hub link cannot be dialled; it is not counted live", "link", a, "reason", err)
			continue
		}
		h.links[a] = n
	}
}

// dial starts the link to addr.
func (h *hubHealth) dial(addr string) (*actors.Node, error) {
	d, err := carriers.NewDialer(addr)
	if err != nil {
		return nil, err
	}
	n, err := actors.NewNode(actors.Config{
		Key: h.key, Logger: h.log.With("health", addr),
		// The link is the member's health: a PING every third of a probe
		// interval finds a silent link within about one interval.
		Keepalive:        max(h.interval/engine.SilentTicks, time.Millisecond),
		HandshakeTimeout: h.window,
		// Redialled every interval, no longer backing off: a member whose
		// link comes back within the failure window stays.
		Backoff: h.interval, MaxBackoff: h.interval,
		// A link lost is the health lost, not one to resume.
		ResumeWindow: -1,
		// The hub asks nothing of this side, and this side nothing of it.
		AllowListen: forward.MustTargetPolicy(), AllowTargets: forward.MustTargetPolicy(),
		OnLink: func(ev actors.LinkEvent) { h.set(addr, ev.Up) },
	})
	if err != nil {
		return nil, err
	}
	n.Connect(d)
	return n, nil
}

// set notes the link to addr going up or down; the node's actors call it.
func (h *hubHealth) set(addr string, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.up[addr] = up
	}
}

// isUp reports whether the link to addr is up now.
func (h *hubHealth) isUp(addr string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up[addr]
}

// close closes every link; the probe loop has stopped.
func (h *hubHealth) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	for a, n := range h.links {
		n.Close()
		delete(h.links, a)
	}
}
