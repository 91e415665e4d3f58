package actors

// Splicing at the holder: a stream whose target is the address one of
// this node's own pooled reverse forwards listens on (in a hub cluster:
// another hub bridging a connection to the pool, internal/cluster) does
// not dial that address, which would cost a loopback connection, an
// accept and a listener's turn, and would let the pool send it on to yet
// another hub. It is handed in process to one of the pool's members
// here: the stream takes the Stream end of a local pipe (local.go) as its
// socket, and the member's link opens its stream to the edge on the
// pipe's other end (a splicedConn), as it would on a socket the pool
// accepted. Connections another hub brings go to this node's own members
// only, so a connection crosses one hop between hubs at most.
//
// Who owns what: the pipe is the two streams'; each closes its end when
// its stream ends. A reset at the member's end (splicedConn.Reset)
// resets the other stream too, so a cut-short connection stays cut short
// across the splice.

import (
	"fmt"
	"net"
)

// splice hands a stream to target, if target is one of this node's pooled
// reverse forwards: the conn to take as the stream's socket, or why there
// is none (ok: target is such a forward).
func (e *env) splice(target string) (conn net.Conn, err error, ok bool) {
	p := e.poolAt(target)
	if p == nil {
		return nil, nil, false
	}
	ch := e.pick(p, true)
	if !ch.ok() {
		return nil, fmt.Errorf("%w: %s (pool %s)", ErrNotHeldHere, target, p.name), true
	}
	user, end := newLocalPipe(target)
	fwd := poolForward(p.ln, p)
	ch.open(&openRequest{conn: &splicedConn{LocalConn: user}, forward: fwd.String()}, false)
	e.stats.Spliced.Add(1)
	e.stats.countForward(ForwardKey(fwd))
	return end, nil, true
}

// poolAt is the pool listening on addr, as a stream's target names it: its
// bound address, or, for a pool bound on all addresses, loopback or any
// address with its port.
func (e *env) poolAt(addr string) *pool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	anyHost := ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
	e.pools.mu.Lock()
	defer e.pools.mu.Unlock()
	for _, p := range e.pools.byAddr {
		a, ok := p.ln.Addr().(*net.TCPAddr)
		if !ok {
			continue
		}
		if a.String() == addr || anyHost && a.IP.IsUnspecified() && fmt.Sprint(a.Port) == port {
			return p
		}
	}
	return nil
}

// splicedConn is the member's end of a splice: a LocalConn whose Reset
// resets the stream at the other end.
type splicedConn struct{ *LocalConn }

// Reset is the member's stream cut short: the other stream is reset too.
func (c *splicedConn) Reset() { c.p.abort() }

// abort ends the pipe from the application's side as a reset: what the
// Stream sent is dropped, and the Stream, woken, resets its stream.
func (p *localPipe) abort() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed, p.aborted = true, true
	putAll(p.down)
	p.down, p.downBytes, p.downOff = nil, 0, 0
	wake := p.needWake()
	p.signal()
	p.mu.Unlock()
	if wake {
		// Not run here: the caller is the member's Stream, on its own
		// link's strand.
		p.env.send(p.self, localWakeMsg)
	}
}

// wasAborted says whether the application's side ended the pipe with a
// reset (abort).
func (p *localPipe) wasAborted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.aborted
}
