package cluster

// This hub's door for the other hubs' links (Config.Link), and what the
// member does when it closes while the member runs.
//
// The other hubs judge this hub's health by a link held to its door
// (health.go), and route to it over links dialled there (bridge.go). A
// door whose listener closes while the node behind it stays up keeps the
// links already accepted up: without a word from this hub the others
// would go on counting it and routing to it until those links dropped,
// and then find it gone for good. So the door's end is the member's to
// hear (ServeHubLinks watches the listener; cmd/sockmux's door, which
// outlives the nodes serving it, says so itself): the member withdraws
// (LinksClosed). It takes its entries out of the directory at once, so
// the other hubs' bridges drop their shares of its binds at the next
// push, and its probe answers stop naming a hub-link address, so the
// other members of the static provider fail its probes and count it out
// after their failure window. The other providers judge membership by
// their own means: there the hub stays a member with no entries.

import (
	"errors"
	"net"
	"sync/atomic"

	"github.com/sockmux/sockmux/actors"
)

// ServeHubLinks has n take the other hubs' links on ln (Config.Link's
// listener) with the cluster's hub-link key (HubLinkKey), and watches
// ln: when it closes while n stays up (closed by whoever holds it, or
// failing for good), the member withdraws as LinksClosed says. n's own
// closing is not that: its links go with it, which the other hubs see
// at once, and its edges' binds leave the directory. A member without a
// key has no hub links to serve: ErrNoKey.
func (m *Member) ServeHubLinks(n *actors.Node, ln net.Listener) error {
	if m.cfg.Key == nil {
		return ErrNoKey
	}
	key, err := HubLinkKey(m.cfg.Key, m.cfg.Name)
	if err != nil {
		return err
	}
	return n.ServeKeyed(&watchedListener{Listener: ln, ended: m.LinksClosed}, key)
}

// LinksClosed tells the member that this hub takes no more links from
// the other hubs: the listener at Config.Link has closed. The member
// withdraws for good: its entries leave the directory at once (and those
// registered later are not sent), and the static provider's answers to
// the other members' probes name no hub-link address, so they count this
// hub out after their failure window. It logs why once; a later call,
// or one after Close, does nothing. Restart the hub to serve again: a
// withdrawn hub does not rejoin when the others count it out (rejoin.go),
// since it would not be counted again.
func (m *Member) LinksClosed() {
	m.mu.Lock()
	if m.closed || m.withdrawn {
		m.mu.Unlock()
		return
	}
	m.withdrawn = true
	m.kickLocked()
	// The provider's lock is taken under the member's, as a rejoin's new
	// incarnation does (incarnation.go), which takes m.withdrawn over.
	if m.inc != nil {
		if sp, ok := m.inc.provider.(*staticProvider); ok {
			sp.linksClosed()
		}
	}
	m.mu.Unlock()
	m.log.Error("cluster: this hub's listener for the other hubs' links closed: withdrawing from the cluster (its binds leave the directory; restart the hub to serve them again)",
		"link", m.cfg.Link)
}

// watchedListener is a hub-link listener that says when it has ended
// under its node: an Accept that finds it closed, unless the node closed
// it (Close, which only the node serving it calls).
type watchedListener struct {
	net.Listener
	ended   func()
	closing atomic.Bool
}

// Accept is the listener's, noting its end.
func (l *watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && errors.Is(err, net.ErrClosed) && !l.closing.Load() {
		l.ended()
	}
	return c, err
}

// Close is the node's closing the listener: not an end to report.
func (l *watchedListener) Close() error {
	l.closing.Store(true)
	return l.Listener.Close()
}
