package actors

// Splicing at the holder: a stream whose target is the address one of
// this node's own reverse forwards listens on (in a hub cluster: another
// hub bridging a connection to a bind held here, internal/cluster) does
// not dial that address, which would cost a loopback connection, an
// accept and a listener's turn, and would let a pool send it on to yet
// another hub. It is handed in process to the forward's link, or to one
// of the pool's members here: the stream takes the Stream end of a local
// pipe (local.go) as its socket, and the link opens its stream to the
// edge on the pipe's other end (a splicedConn), as it would on a socket
// the forward accepted. Connections another hub brings go to this node's
// own edges only, so a connection crosses one hop between hubs at most.
//
// Who owns what: the pipe is the two streams'; each closes its end when
// its stream ends. A reset at the member's end (splicedConn.Reset)
// resets the other stream too, so a cut-short connection stays cut short
// across the splice.

import (
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
)

// splice hands a stream to target, if target is one of this node's
// reverse forwards: the conn to take as the stream's socket, or why there
// is none (ok: target is such a forward).
func (e *env) splice(target string) (conn net.Conn, err error, ok bool) {
	if p := e.poolAt(target); p != nil {
		ch := e.pick(p, true)
		if !ch.ok() {
			return nil, fmt.Errorf("%w: %s (pool %s)", ErrNotHeldHere, target, p.name), true
		}
		user, end := newLocalPipe(target)
		fwd := poolForward(p.ln, p)
		ch.open(&openRequest{conn: &splicedConn{LocalConn: user}, forward: fwd.String()}, false)
		e.spliced(ForwardKey(fwd))
		return end, nil, true
	}
	if r, found := e.reverseAt(target); found {
		user, end := newLocalPipe(target)
		e.send(r.link, &openRequest{conn: &splicedConn{LocalConn: user}, kind: engine.TargetForward, target: r.fwd.Target, forward: r.fwd.String()})
		e.spliced(ForwardKey(r.fwd))
		return end, nil, true
	}
	return nil, nil, false
}

// spliced counts a stream spliced to the forward known by key.
func (e *env) spliced(key string) {
	e.stats.Spliced.Add(1)
	e.stats.countForward(key)
}

// listensOn reports whether a listener bound to a takes a stream's
// target addr: a's own address, or, for a listener on all addresses,
// loopback or any address with its port.
func listensOn(a net.Addr, addr string) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	if ta.String() == addr {
		return true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !ta.IP.IsUnspecified() || strconv.Itoa(ta.Port) != port {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// poolAt is the pool listening on addr, as a stream's target names it.
func (e *env) poolAt(addr string) *pool {
	e.pools.mu.Lock()
	defer e.pools.mu.Unlock()
	for _, p := range e.pools.byAddr {
		if listensOn(p.ln.Addr(), addr) {
			return p
		}
	}
	return nil
}

// reverseBind is a reverse forward of one link (not pooled) listening
// here: the link, the forward as its listener knows it, and the address.
type reverseBind struct {
	link *actor.PID
	fwd  forward.Forward
	ln   net.Addr
}

// reverseSet is a node's reverse forwards of one link each, by listener.
type reverseSet struct {
	mu    sync.Mutex
	byPID map[string]reverseBind // by their listenerActor's id
}

// addReverse enters the reverse forward served by listener pid.
func (e *env) addReverse(pid *actor.PID, r reverseBind) {
	e.reverses.mu.Lock()
	defer e.reverses.mu.Unlock()
	if e.reverses.byPID == nil {
		e.reverses.byPID = map[string]reverseBind{}
	}
	e.reverses.byPID[pid.Id] = r
}

// removeReverse takes the reverse forward of listener pid out.
func (e *env) removeReverse(pid *actor.PID) {
	e.reverses.mu.Lock()
	defer e.reverses.mu.Unlock()
	delete(e.reverses.byPID, pid.Id)
}

// reverseAt is the reverse forward listening on addr, as a stream's target
// names it.
func (e *env) reverseAt(addr string) (reverseBind, bool) {
	e.reverses.mu.Lock()
	defer e.reverses.mu.Unlock()
	for _, r := range e.reverses.byPID {
		if listensOn(r.ln, addr) {
			return r, true
		}
	}
	return reverseBind{}, false
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
