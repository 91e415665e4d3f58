package actors

// The streams each peer host holds of this node's sockets, so that a node
// near its file descriptor limit refuses the host holding the most first.

import (
	"net"
	"strings"
	"sync"
)

// hostShares counts the streams peers opened here (each a socket this
// node dialled, or serves), by the peer's host. Every stream of every link
// costs a file descriptor, and one peer with many links can hold most of
// the node's: without this, a peer that opened twenty links of a thousand
// streams each left the node out of descriptors and every other peer's
// new streams failed. Past pressure streams in all, a host that holds its
// fair share of pressure (pressure over the hosts holding any, the asking
// one counted) is refused, and the others still get in, into the room
// between pressure and the hard limit; past the hard limit everyone is,
// since a dial would fail anyway. So one host alone holds at most
// pressure streams, and a newcomer finds room.
type hostShares struct {
	mu       sync.Mutex
	byHost   map[string]*hostShare
	total    int
	pressure int // 0: no limit known (no pressure, no hard limit)
	hard     int
}

// hostShare is one host's count; a Stream holds it and lets go once.
type hostShare struct {
	host string
	n    int
}

// newHostShares bounds the streams by a descriptor limit of fds (0: none
// known): pressure past three quarters of it, the hard limit past it less
// a reserve for links, listeners and the accepts of new ones.
func newHostShares(fds int) *hostShares {
	h := &hostShares{byHost: make(map[string]*hostShare)}
	if fds > 0 {
		h.pressure, h.hard = fds*3/4, fds-min(fdReserve, fds/8)
	}
	return h
}

// fdReserve is the most a node keeps of its descriptors for what is not a
// peer's stream (an eighth of them when that is less).
const fdReserve = 256

// admit counts one more stream of host, or refuses it: ok false, with
// what the host holds and the node's total, for the reason.
func (h *hostShares) admit(host string) (s *hostShare, ok bool, held, total int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s = h.byHost[host]
	if h.pressure > 0 && h.total >= h.pressure {
		n := 0
		if s != nil {
			n = s.n
		}
		hosts := len(h.byHost)
		if s == nil {
			hosts++
		}
		if h.total >= h.hard || n >= h.pressure/hosts {
			return nil, false, n, h.total
		}
	}
	if s == nil {
		s = &hostShare{host: host}
		h.byHost[host] = s
	}
	s.n++
	h.total++
	return s, true, s.n, h.total
}

// release lets go of one stream of s's host.
func (h *hostShares) release(s *hostShare) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.n--
	h.total--
	if s.n == 0 {
		delete(h.byHost, s.host)
	}
}

// peerHost is the host part of a link's peer ("127.0.0.1:5000",
// "tcp://hub:7000"), or the peer's whole name when it has none.
func peerHost(peer string) string {
	if i := strings.Index(peer, "://"); i >= 0 {
		peer = peer[i+3:]
	}
	if host, _, err := net.SplitHostPort(peer); err == nil {
		return host
	}
	return peer
}
