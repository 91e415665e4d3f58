package actors

// Splicing at the holder: a stream whose target is the address one of
// this node's own reverse forwards listens on (in a hub cluster: another
// hub bridging a connection to a bind held here, internal/cluster) does
// not dial that address, which would cost a loopback connection, an
// accept and a listener's turn, and would let a pool send it on to yet
// another hub. It is handed in process to the forward's link, or to one
// of the pool's members here: the stream and the one the link opens to
// the edge each take one end of a splice (newSplice), two local pipes
// (local.go) that are each other's application, as they would take a
// socket the forward accepted. What one Stream's peer sends, the other
// Stream takes and sends on in the same buffers: no copy, and no
// goroutine between them. Connections another hub brings go to this
// node's own edges only, so a connection crosses one hop between hubs at
// most.
//
// Who owns what: each pipe is its Stream's, as a socket is; a buffer one
// Stream pushes is the other pipe's until that Stream takes it. A FIN
// carries over as a FIN; a Stream cut short (a reset either way, its link
// gone) aborts the other pipe, whose Stream then resets its stream, so a
// cut-short connection stays cut short across the splice.

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
)

// splice hands a stream to target, if target is one of this node's
// reverse forwards: the conn to take as the stream's socket, or why there
// is none (ok: target is such a forward).
func (e *env) splice(target string) (conn net.Conn, err error, ok bool) {
	// Every OPEN of every link asks: an address that is no IP and port
	// (a name) is no listener here, and the look-ups below allocate
	// nothing and go by port.
	ap, perr := netip.ParseAddrPort(target)
	if perr != nil {
		return nil, nil, false
	}
	if p := e.poolAt(ap); p != nil {
		ch := e.pick(p, true)
		if !ch.ok() {
			return nil, fmt.Errorf("%w: %s (pool %s)", errNotHeldHere, target, p.name), true
		}
		end, member := newSplice(target)
		fwd := poolForward(p.ln, p)
		ch.open(&openRequest{conn: member, forward: fwd.String()}, false)
		e.spliced(ForwardKey(fwd))
		return end, nil, true
	}
	if r, found := e.reverseAt(ap); found {
		end, member := newSplice(target)
		e.send(r.link, &openRequest{conn: member, kind: engine.TargetForward, target: r.fwd.Target, forward: r.fwd.String()})
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
// target t: a's own address, or, for a listener on all addresses,
// loopback or any address with its port.
func listensOn(a net.Addr, t netip.AddrPort) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.Port != int(t.Port()) {
		return false
	}
	la := ta.AddrPort().Addr().Unmap()
	ip := t.Addr().Unmap()
	if la == ip {
		return true
	}
	return la.IsUnspecified() && (ip.IsLoopback() || ip.IsUnspecified())
}

// poolAt is the pool listening on addr, as a stream's target names it.
func (e *env) poolAt(t netip.AddrPort) *pool {
	e.pools.mu.Lock()
	defer e.pools.mu.Unlock()
	for _, p := range e.pools.byAddr { // a node's pools are few: one per pooled bind
		if p.ln != nil && listensOn(p.ln.Addr(), t) { // a UDP pool takes no stream's socket
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

// reverseSet is a node's reverse forwards of one link each, by port and
// listener: a hub holds one for each -R of each edge, and every OPEN looks
// here.
type reverseSet struct {
	mu     sync.Mutex
	byPort map[int]map[string]reverseBind // by port, then their listenerActor's id
	ports  map[string]int                 // each listener's port
}

// addReverse enters the reverse forward served by listener pid.
func (e *env) addReverse(pid *actor.PID, r reverseBind) {
	ta, ok := r.ln.(*net.TCPAddr)
	if !ok {
		return
	}
	rs := &e.reverses
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byPort == nil {
		rs.byPort, rs.ports = map[int]map[string]reverseBind{}, map[string]int{}
	}
	if rs.byPort[ta.Port] == nil {
		rs.byPort[ta.Port] = map[string]reverseBind{}
	}
	rs.byPort[ta.Port][pid.Id] = r
	rs.ports[pid.Id] = ta.Port
}

// removeReverse takes the reverse forward of listener pid out.
func (e *env) removeReverse(pid *actor.PID) {
	rs := &e.reverses
	rs.mu.Lock()
	defer rs.mu.Unlock()
	port, ok := rs.ports[pid.Id]
	if !ok {
		return
	}
	delete(rs.ports, pid.Id)
	delete(rs.byPort[port], pid.Id)
	if len(rs.byPort[port]) == 0 {
		delete(rs.byPort, port)
	}
}

// reverseAt is the reverse forward listening on t, as a stream's target
// names it.
func (e *env) reverseAt(t netip.AddrPort) (reverseBind, bool) {
	rs := &e.reverses
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.byPort[int(t.Port())] { // those on other addresses of the port: a few at most
		if listensOn(r.ln, t) {
			return r, true
		}
	}
	return reverseBind{}, false
}

// newSplice makes the two ends of a splice, one for each Stream to take as
// its socket: two pipes, each the other's application (localPipe.twin).
// What the peer of one Stream sends, that Stream pushes and the other
// takes and sends on, in the same pooled buffers: nothing is copied and
// no goroutine stands between the two, as one would for a LocalConn read
// and written as a socket. The first Stream's peer gets credit for what
// the second took (taken), a FIN carries over as a FIN (endUp), and a
// Stream cut short cuts the other short (cutShort aborts the twin).
func newSplice(target string) (a, b *localEnd) {
	_, a = newLocalPipe(target)
	_, b = newLocalPipe(target)
	a.p.twin, b.p.twin = b.p, a.p
	return a, b
}

// pushTwin is push on a splice's pipe: what the Stream hands over is the
// twin's to take (as its application's writes) and counts here as unread
// until it is taken, so this Stream's window holds it as a socket's
// would. It reports false once the twin's Stream has let go.
func (p *localPipe) pushTwin(bufs []*engine.Buffer) bool {
	n := 0
	for _, b := range bufs {
		n += len(b.B)
	}
	p.mu.Lock()
	dead := p.closed || p.err != nil
	if !dead {
		p.downBytes += n
	}
	p.mu.Unlock()
	t := p.twin
	t.mu.Lock()
	if dead || t.gone || t.err != nil || t.upEOF {
		t.mu.Unlock()
		putAll(bufs)
		clear(bufs)
		return false
	}
	for _, b := range bufs {
		t.up = append(t.up, b)
	}
	t.upBytes += n
	clear(bufs)
	wake := t.armed && t.needWake()
	t.armed = false
	t.mu.Unlock()
	if wake {
		// Queued, not run here: the caller is the other Stream, on its
		// own link's strand.
		t.env.send(t.self, localWakeMsg)
	}
	return true
}

// taken is the twin's Stream having taken n of the bytes this pipe's
// Stream pushed: what a Read is to a LocalConn, told to the Stream by the
// same rule (creditBatch: once it adds up to a batch), so a small reply
// costs no message of its own.
func (p *localPipe) taken(n int) {
	p.mu.Lock()
	p.downBytes -= n
	p.unread += n
	wake := n > 0 && p.unread >= p.creditBatch() && p.needWake()
	p.mu.Unlock()
	if wake {
		p.env.send(p.self, localWakeMsg)
	}
}

// endUp is the twin's peer having finished: this pipe's Stream sends a
// FIN once it has sent what it has.
func (p *localPipe) endUp() {
	p.mu.Lock()
	p.upEOF = true
	wake := p.armed && p.needWake()
	p.armed = false
	p.mu.Unlock()
	if wake {
		p.env.send(p.self, localWakeMsg)
	}
}

// abort ends the pipe from the application's side as a reset: what the
// Stream sent is dropped, and the Stream, woken, resets its stream. A
// splice's pipe is aborted when its twin is cut short.
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

// reverseList is every reverse forward listening here (TCP), by address.
func (e *env) reverseList() []reverseBind {
	rs := &e.reverses
	rs.mu.Lock()
	var out []reverseBind
	for _, byID := range rs.byPort {
		for _, r := range byID {
			out = append(out, r)
		}
	}
	rs.mu.Unlock()
	slices.SortFunc(out, func(a, b reverseBind) int { return strings.Compare(a.ln.String(), b.ln.String()) })
	return out
}
