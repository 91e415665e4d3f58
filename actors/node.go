package actors

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/ratelog"
)

// LinkEvent reports a link going up or down.
type LinkEvent struct {
	Peer string
	Up   bool
	Err  error // why it went down
}

// Node runs the actors of one sockmux process.
type Node struct {
	env       *env
	mu        sync.Mutex
	forwards  []*actor.PID // Listeners
	fwdBinds  []string     // what each of forwards was asked to listen on
	dialer    *actor.PID   // DialStream's Listener, made on first use
	listeners []net.Listener
	fwdAddrs  []net.Addr
	closed    bool

	endDrain     chan struct{} // closed by EndDrain: Shutdown's drain is over now
	endDrainOnce sync.Once
}

// env is what every actor of a node shares.
type env struct {
	system     *System // what sys and dispatcher come from
	ownSystem  bool    // the node started system, and stops it on Close
	sys        *actor.ActorSystem
	log        *slog.Logger
	limit      *ratelog.Limiter // repeated warnings a peer can cause, one per cause per interval
	cfg        Config
	wg         sync.WaitGroup // every goroutine the node starts
	links      linkSet
	pools      poolSet
	reverses   reverseSet // the reverse forwards of one link each, for splicing
	stats      Stats
	hosts      *hostShares // the peers' streams by host (hostshare.go)
	supervisor actor.SupervisorStrategy
	dispatcher *workerDispatcher
	done       chan struct{}

	mu       sync.Mutex
	linkPIDs map[string]*actor.PID        // live Link actors, by id
	linkDone map[string]chan struct{}     // closed when a Link and its children have stopped
	seqLinks map[engine.LinkID]*actor.PID // accepted CapSeq links, by link id, for joins
	closed   bool

	// lastReclaim is when reclaim last ran, in Unix nanoseconds.
	lastReclaim atomic.Int64

	// noSeq leaves CapSeq out of this node's HELLOs (Config.Unsequenced;
	// tests also set it to play a peer that does not sequence frames).
	noSeq bool

	// minVersion and maxVersion are what this node's HELLO offers; tests
	// change them to play a peer of another version.
	minVersion, maxVersion uint8
	// now is the clock HELLOs carry and are checked against; tests skew it.
	now func() time.Time
	// ownDial: targets are dialled by the node's own dialler (no
	// Config.dialTarget), which may connect to a loopback target at once
	// (dialNow).
	ownDial bool
	// replay remembers the nonces of authenticated HELLOs.
	replay *engine.ReplayCache
	// live holds the Policies, replaced whole by SetPolicies.
	live atomic.Pointer[Policies]
	// remoteSlots is the -R list (see remotes); remoteMu orders its writers.
	remoteSlots atomic.Pointer[[]*forward.Forward]
	remoteMu    sync.Mutex
	// failed carries a fatal forward failure (ExitOnForwardFailure).
	failed     chan error
	failedOnce sync.Once
}

// fail reports a fatal error to Node.Failed, once.
func (e *env) fail(err error) {
	e.failedOnce.Do(func() { e.failed <- err })
}

// spawnLink starts a Link actor, on a strand of its own, unless the node
// is closing.
func (e *env) spawnLink(mk func() *linkActor) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	st := newStrand(e.dispatcher)
	pid := e.sys.Root.Spawn(e.propsOn(st, func() actor.Actor {
		l := mk()
		l.strand = st
		return l
	}))
	e.linkPIDs[pid.Id] = pid
	if _, ok := e.linkDone[pid.Id]; !ok {
		e.linkDone[pid.Id] = make(chan struct{})
	}
	return true
}

// registerLink enters an accepted CapSeq link in the table joins are
// routed by; it fails when the id is taken.
func (e *env) registerLink(id engine.LinkID, pid *actor.PID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, taken := e.seqLinks[id]; taken {
		return false
	}
	e.seqLinks[id] = pid
	return true
}

// unregisterLink takes link id out of the table, if pid has it.
func (e *env) unregisterLink(id engine.LinkID, pid *actor.PID) {
	e.mu.Lock()
	if p := e.seqLinks[id]; p != nil && p.Equal(pid) {
		delete(e.seqLinks, id)
	}
	e.mu.Unlock()
}

// seqLink returns the Link actor of accepted CapSeq link id, or nil.
func (e *env) seqLink(id engine.LinkID) *actor.PID {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seqLinks[id]
}

// linkStopped forgets a Link actor that has stopped, with its children.
func (e *env) linkStopped(pid *actor.PID) {
	e.mu.Lock()
	delete(e.linkPIDs, pid.Id)
	if ch, ok := e.linkDone[pid.Id]; ok {
		close(ch)
		delete(e.linkDone, pid.Id)
	}
	e.mu.Unlock()
}

// NewNode starts a node's actor system and its forwards' listeners.
func NewNode(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Window == 0 {
		cfg.Window = engine.DefaultWindow
	}
	if cfg.MaxWindow == 0 {
		cfg.MaxWindow = engine.DefaultMaxWindow
	}
	if cfg.LinkBudget == 0 {
		cfg.LinkBudget = DefaultLinkBudget
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = engine.DefaultMaxPayload
	}
	switch {
	case cfg.AllowListen != nil:
	case cfg.AcceptStream != nil: // the library's: it listens for no one
		cfg.AllowListen = forward.MustTargetPolicy()
	default:
		cfg.AllowListen = forward.LoopbackTargets
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = engine.DefaultMaxSkew
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxBinds == 0 {
		cfg.MaxBinds = DefaultMaxBinds
	}
	if cfg.Keepalive == 0 {
		cfg.Keepalive = DefaultKeepalive
	}
	if cfg.UDPIdle == 0 {
		cfg.UDPIdle = DefaultUDPIdle
	}
	if cfg.UDPMax == 0 {
		cfg.UDPMax = DefaultUDPMax
	}
	if cfg.OpenTimeout == 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.ResumeWindow == 0 {
		cfg.ResumeWindow = DefaultResumeWindow
	}
	if cfg.Key != nil {
		if err := engine.CheckKey(cfg.Key); err != nil {
			return nil, err
		}
	}
	if cfg.Identity == nil && (cfg.AuthorizedKeys != nil || cfg.PeerKey != nil || cfg.KnownHosts != "" || cfg.TrustNew) {
		return nil, ErrNeedIdentity
	}
	if cfg.TrustNew && cfg.KnownHosts == "" {
		return nil, fmt.Errorf("%w: trusting a new listener key needs a known hosts file to record it in", ErrNeedIdentity)
	}
	if cfg.Carriers > MaxCarriers {
		return nil, fmt.Errorf("%d carriers per link: the most is %d", cfg.Carriers, MaxCarriers)
	}
	ownDial := cfg.dialTarget == nil
	if cfg.dialTarget == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		cfg.dialTarget = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	e := &env{cfg: cfg, log: cfg.Logger, limit: ratelog.New(0), done: make(chan struct{}), linkPIDs: make(map[string]*actor.PID), linkDone: make(map[string]chan struct{}),
		seqLinks:   make(map[engine.LinkID]*actor.PID),
		minVersion: engine.MinVersion, maxVersion: engine.Version,
		now: time.Now, replay: engine.NewReplayCache(100_000), failed: make(chan error, 1), ownDial: ownDial,
		noSeq: cfg.Unsequenced}
	fds := cfg.fdLimit
	if fds == 0 {
		fds = fdLimit()
	}
	e.hosts = newHostShares(fds)
	e.system, e.ownSystem = cfg.System, cfg.System == nil
	if e.ownSystem {
		e.system = newSystem(cfg.Logger, newWorkerDispatcher(300))
	}
	e.sys, e.dispatcher = e.system.sys, e.system.workers
	e.supervisor = actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		e.log.Error("actor failed; stopping it", "reason", reason)
		return actor.StopDirective
	})
	e.links.env = e
	n := &Node{env: e, endDrain: make(chan struct{})}
	n.SetPolicies(Policies{AllowTargets: cfg.AllowTargets, AllowListen: cfg.AllowListen, Direct: cfg.Direct, ProxyAuth: cfg.ProxyAuth, Key: cfg.Key,
		AuthorizedKeys: cfg.AuthorizedKeys})
	slots := make([]*forward.Forward, len(cfg.Remotes))
	for i := range cfg.Remotes {
		slots[i] = &cfg.Remotes[i]
	}
	e.remoteSlots.Store(&slots)
	for _, f := range cfg.Forwards {
		if err := n.AddForward(f); err != nil {
			n.Close()
			return nil, err
		}
	}
	for _, bind := range cfg.Dynamic {
		if err := n.addProxy(bind); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// goroutine runs f on a goroutine the node waits for on Close.
func (e *env) goroutine(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

func (e *env) send(pid *actor.PID, msg any) { e.sys.Root.Send(pid, msg) }

// Serve accepts carrier connections on ln, one link each, until ln is
// closed or the node is. A TCP listener is gated first (gateLinks): the
// carriers pending their handshake are bounded.
func (n *Node) Serve(ln net.Listener) { n.serve(ln, nil) }

// ServeKeyed is Serve for links that authenticate with key alone (a
// pre-shared key, as --key-file's): the node's own key, identity and
// authorized keys are not asked of them, and what they may ask is the
// node's policies. It gives one node a second door for a second kind of
// peer: a cluster's hubs reach each other with a key derived from the
// cluster's (internal/cluster), not with the edges' key or identities.
// A key CheckKey refuses is an error, and ln is not served.
func (n *Node) ServeKeyed(ln net.Listener, key []byte) error {
	if err := engine.CheckKey(key); err != nil {
		return err
	}
	n.serve(ln, bytes.Clone(key))
	return nil
}

func (n *Node) serve(ln net.Listener, key []byte) {
	ln = gateLinks(ln, n.env) // bounds the carriers pending their handshake
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		ln.Close()
		return
	}
	n.listeners = append(n.listeners, ln)
	n.mu.Unlock()
	n.env.log.Info("listening for links", "addr", ln.Addr().String())
	// A connection that comes as the node closes is closed: the node has
	// already closed ln, so the loop ends at its next Accept.
	n.env.acceptLoop(ln, nil, "links", func(c net.Conn) {
		if !n.env.spawnLink(func() *linkActor { l := newLink(n.env, c); l.ownKey = key; return l }) {
			c.Close()
		}
	})
}

// ServeConn runs one link, as the accepting side, on a carrier connection
// made elsewhere (sockmux stdio's own stdin and stdout). The channel it
// returns is told, once the link has ended, how: nil for an orderly end (a
// GOAWAY, this side's or the peer's), the reason otherwise (a failed
// handshake, the carrier's end), ErrClosed if the node was closing.
func (n *Node) ServeConn(c net.Conn) <-chan error {
	ended := make(chan error, 1)
	if !n.env.spawnLink(func() *linkActor {
		l := newLink(n.env, c)
		l.onEnd = ended
		return l
	}) {
		c.Close()
		ended <- ErrClosed
	}
	return ended
}

// Connect keeps a link to the peer d reaches, redialling with backoff when
// it drops, until the node is closed. The failover dialers are the other
// addresses of that peer, in order (after the last comes d again): an
// attempt that fails moves to the next at once, until each has failed in
// a row (then the backoff applies); a link lost for good moves to the
// next after the backoff; a link that can be resumed is resumed where it
// is. Every carrier of the link, the extra ones and those that resume it,
// goes to the address in use (see failover).
func (n *Node) Connect(d carriers.Dialer, failover ...carriers.Dialer) {
	addrs := append([]carriers.Dialer{d}, failover...)
	n.env.spawnLink(func() *linkActor { return newLink(n.env, nil, addrs...) })
}

// DialStream opens a stream to target over the node's newest link (waiting
// up to the open timeout for one) and returns it as a net.Conn once the
// peer has opened it: what is written to it arrives at target, as if
// dialled from the peer. A peer that cannot (or may not) reach target gives
// an *OpenError with its reason; no link within the open timeout gives a
// net.Error whose Timeout is true (errNoLink). It is how a link rides on a
// stream of another (--via), and how a shared upstream is reached through a
// tunnel.
//
// The stream is a LocalConn (local.go), not one end of a net.Pipe: it can
// be half-closed (CloseWrite), and a stream cut short reads as an error
// wrapping ErrStreamReset, never as a clean end; the Stream takes what is
// written without a goroutine copying it.
func (n *Node) DialStream(ctx context.Context, target string) (net.Conn, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("dial stream %q: %w", target, err)
	}
	user, end := newLocalPipe(target)
	if err := n.openThrough(ctx, end, target); err != nil {
		return nil, err
	}
	return user, nil
}

// OpenStream carries conn over a new stream to target, dialled by the
// peer, as a -L forward carries a connection it accepted: it returns once
// the peer opened the stream (or with why not, as DialStream), and the
// stream owns conn from then on, closing it when the stream ends (calling
// Reset instead when conn is a Resetter and the stream was cut short). On
// an error conn is closed.
func (n *Node) OpenStream(ctx context.Context, conn net.Conn, target string) error {
	if _, _, err := net.SplitHostPort(target); err != nil {
		conn.Close()
		return fmt.Errorf("dial stream %q: %w", target, err)
	}
	return n.openThrough(ctx, conn, target)
}

// openThrough is OpenStream once target is known to be one: it hands conn
// to DialStream's Listener, which waits for a link, and waits for the
// peer's answer.
func (n *Node) openThrough(ctx context.Context, conn net.Conn, target string) error {
	if err := ctx.Err(); err != nil {
		conn.Close()
		return err
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		conn.Close()
		return ErrClosed
	}
	if n.dialer == nil {
		n.dialer = n.env.sys.Root.Spawn(n.env.props(func() actor.Actor {
			return newListener(n.env, nil, forward.Forward{Bind: "stream", Target: ""})
		}))
	}
	opened := make(chan error, 1)
	n.env.send(n.dialer, &accepted{conn: conn, target: target, opened: opened})
	n.mu.Unlock()
	select {
	case err := <-opened:
		if err != nil {
			conn.Close()
			return fmt.Errorf("dial stream %s: %w", target, err)
		}
		return nil
	case <-ctx.Done():
		conn.Close() // the stream, if it still opens, ends at once
		return ctx.Err()
	}
}

// Failed delivers a fatal error: a -R the peer refused, with
// ExitOnForwardFailure set.
func (n *Node) Failed() <-chan error { return n.env.failed }

// EndDrain ends a Shutdown's drain now, or the next one's before it
// begins: the links still draining stop, and their streams are reset (a
// second Ctrl-C).
func (n *Node) EndDrain() { n.endDrainOnce.Do(func() { close(n.endDrain) }) }

// Close says GOAWAY on every link, closes every socket at once and waits
// for every actor and goroutine of the node to end.
func (n *Node) Close() error { return n.Shutdown(0) }

// Redial makes every dialling link that is waiting to redial dial now.
func (n *Node) Redial() {
	n.env.mu.Lock()
	defer n.env.mu.Unlock()
	for _, pid := range n.env.linkPIDs {
		n.env.send(pid, &redialRequest{})
	}
}

// Shutdown stops accepting, says GOAWAY on every link, lets open streams
// finish for up to drain, then closes everything and waits for every actor
// and goroutine of the node to end.
func (n *Node) Shutdown(drain time.Duration) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.closed = true
	fwds, lns := append([]*actor.PID(nil), n.forwards...), n.listeners
	n.mu.Unlock()
	close(n.env.done)
	for _, ln := range lns {
		ln.Close()
	}
	// Pools stop accepting too. A pool of other hubs' shares only has no
	// member whose link's end would close it, and its accept loop would
	// keep the Wait below waiting (pool_peers.go).
	n.env.closePools()
	if n.dialer != nil {
		fwds = append(fwds, n.dialer)
	}
	for _, pid := range fwds {
		_ = n.env.sys.Root.StopFuture(pid).Wait()
	}
	n.env.mu.Lock()
	n.env.closed = true
	links := make([]*actor.PID, 0, len(n.env.linkPIDs))
	var dones []chan struct{}
	for id, pid := range n.env.linkPIDs {
		links = append(links, pid)
		dones = append(dones, n.env.linkDone[id])
	}
	n.env.mu.Unlock()
	// Links say GOAWAY, let their streams drain, and stop themselves once
	// it is written; they are waited for by their done channels, which a
	// link that stopped on its own at the same moment closes too (a reply
	// to a request would be lost with its mailbox). Past drain and a
	// little more, what is left is stopped.
	for _, pid := range links {
		n.env.sys.Root.Send(pid, &shutdown{drain: drain})
	}
	limit := time.NewTimer(drain + 3*time.Second)
wait:
	for _, done := range dones {
		select {
		case <-done:
		case <-limit.C:
			break wait
		case <-n.endDrain:
			break wait
		}
	}
	limit.Stop()
	for _, pid := range links {
		n.env.sys.Root.Stop(pid)
	}
	// A Link is done once its Carrier, Scheduler and Streams have stopped
	// too, so no actor starts a goroutine after the Wait below begins.
	for _, done := range dones {
		<-done
	}
	n.env.wg.Wait()
	if n.env.ownSystem {
		n.env.system.close()
	}
	return nil
}
