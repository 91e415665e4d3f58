package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sockmux/carriers"
	"sockmux/engine"
	"sockmux/forward"
	"sockmux/internal/ratelog"
	"sockmux/proxy"
)

// ErrClosed is returned by a Node that has been closed.
var ErrClosed = errors.New("node closed")

// Config is what a Node needs to run.
type Config struct {
	// Logger receives sockmux's logs and, one level down, protoactor's.
	Logger *slog.Logger
	// Forwards are the -L forwards this side listens for.
	Forwards []forward.Forward
	// Remotes are the -R forwards: the peer listens on Bind and this side
	// dials Target (or serves a proxy, for forward.TargetSOCKS). They are
	// asked for on every link that comes up.
	Remotes []forward.Forward
	// AllowListen are the addresses the peer may ask this side to listen
	// on; nil means loopback only (ssh's GatewayPorts no).
	AllowListen *forward.TargetPolicy
	// ExitOnForwardFailure makes a refused -R fatal: Node.Failed reports it.
	ExitOnForwardFailure bool
	// FailFast makes a dialling link whose first link fails for a reason
	// retrying cannot fix (a wrong or missing key, a certificate that does
	// not verify, no common version, a bad address) stop and report it to
	// Node.Failed instead of redialling, as an interactive ssh does.
	FailFast bool
	// MaxRetries, when above 0, bounds the failed attempts in a row
	// (dials and handshakes) a dialling link makes before it gives up
	// (Node.Failed, ErrGaveUp).
	MaxRetries int
	// ConnectTimeout, when above 0, is how long a dialling link keeps
	// trying for its first link before it gives up (Node.Failed,
	// ErrGaveUp).
	ConnectTimeout time.Duration
	// Dynamic are the -D addresses: a SOCKS5 and HTTP CONNECT proxy on each,
	// whose connections leave the tunnel at the peer.
	Dynamic []string
	// ProxyAuth is the username and password a SOCKS5 client of -D (or of
	// a "-R port:socks") must give; nil for none.
	ProxyAuth *proxy.ProxyAuth
	// Direct are the destinations a -D dials here instead of through the
	// tunnel; nil for none.
	Direct *forward.TargetPolicy
	// Window is the initial per-stream receive window (engine.DefaultWindow
	// when 0).
	Window uint32
	// MaxWindow is how far a stream's receive window may grow while the
	// window, not the local reader, limits it (engine.DefaultMaxWindow when
	// 0; set it to Window to keep windows fixed).
	MaxWindow uint32
	// LinkBudget bounds, per link, how much all its streams' windows may
	// grow beyond their initial size together (DefaultLinkBudget when 0).
	LinkBudget int64
	// MaxPayload is the largest frame payload accepted
	// (engine.DefaultMaxPayload when 0).
	MaxPayload uint32
	// DialTarget dials a target for a stream the peer opened (a net.Dialer
	// with a 10 s timeout when nil).
	DialTarget func(ctx context.Context, addr string) (net.Conn, error)
	// Key is the pre-shared key both peers must prove they hold (none when
	// nil). It never crosses the wire.
	Key []byte
	// MaxSkew is the clock difference tolerated in an authenticated HELLO
	// (engine.DefaultMaxSkew when 0).
	MaxSkew time.Duration
	// AllowTargets are the targets this side dials for its peer; nil means
	// any for an authenticated peer and loopback only otherwise.
	AllowTargets *forward.TargetPolicy
	// MaxStreams bounds the streams open on one link (DefaultMaxStreams
	// when 0); past it, OPENs are refused. A stream that has ended (FIN
	// both ways, or RST) no longer counts, though its socket may still be
	// closing.
	MaxStreams int
	// MaxBinds bounds the reverse forwards (BINDs) one peer may hold open
	// here (DefaultMaxBinds when 0); past it, BINDs are refused.
	MaxBinds int
	// Keepalive is how often a link PINGs its peer (DefaultKeepalive when
	// 0; negative turns it off). A link that receives no frame at all for
	// three intervals is dropped as "peer silent".
	Keepalive time.Duration
	// OpenTimeout is how long a connection accepted by a forward waits for
	// a link to carry it (DefaultOpenTimeout when 0).
	OpenTimeout time.Duration
	// UDPIdle expires a UDP forward's client sessions idle this long
	// (DefaultUDPIdle when 0); UDPMax bounds them per forward
	// (DefaultUDPMax when 0), the least recently active evicted first.
	UDPIdle time.Duration
	UDPMax  int
	// HandshakeTimeout bounds the HELLO exchange (10 s when 0).
	HandshakeTimeout time.Duration
	// Backoff is the first redial delay of a dialling link (1 s when 0); it
	// doubles to MaxBackoff (30 s when 0), with jitter.
	Backoff, MaxBackoff time.Duration
	// OnLink, when set, is called when a link comes up or goes down.
	OnLink func(ev LinkEvent)
	// Carriers is how many carrier connections a dialling link keeps to
	// its peer (1 when 0, at most MaxCarriers): one stream's frames are
	// striped across them. It needs a peer that sequences frames (CapSeq).
	Carriers int
	// ResumeWindow is how long a CapSeq link whose last carrier dropped
	// keeps its streams, waiting for the dialler to resume it
	// (DefaultResumeWindow when 0; negative turns resumption off).
	ResumeWindow time.Duration
}

// Liveness defaults.
const (
	DefaultKeepalive   = 15 * time.Second
	DefaultOpenTimeout = 10 * time.Second
)

// ErrPeerSilent is why a link whose peer sent nothing for three keepalive
// intervals was dropped.
var ErrPeerSilent = errors.New("peer silent")

// DefaultMaxStreams is the default limit of streams open on one link.
const DefaultMaxStreams = 1024

// DefaultMaxBinds is the default limit of one peer's reverse forwards.
const DefaultMaxBinds = 64

// DefaultLinkBudget is how much the windows of one link's streams may grow,
// together, beyond their initial size: 64 MiB.
const DefaultLinkBudget = 64 << 20

// LinkEvent reports a link going up or down.
type LinkEvent struct {
	Peer string
	Up   bool
	Err  error // why it went down
}

// Stats are a Node's counters.
type Stats struct {
	LinksUp        atomic.Int64
	StreamsOpened  atomic.Int64
	StreamsClosed  atomic.Int64
	BytesIn        atomic.Int64 // payload bytes received from the peer
	BytesOut       atomic.Int64 // payload bytes sent to the peer
	DroppedFrames  atomic.Int64 // frames for unknown or ended streams
	DialFailures   atomic.Int64
	MaxQueuedBytes atomic.Int64 // high-water mark of one stream's unwritten bytes
	// MaxSendHeld is the high-water mark of what one link held for
	// sending: granted to its readers, or queued for a carrier.
	MaxSendHeld atomic.Int64
	// DroppedDatagrams counts UDP datagrams dropped: larger than a frame,
	// beyond a stream's credit, or with no link or room to queue them.
	DroppedDatagrams atomic.Int64
	// Refusals counts OPENs and BINDs this side refused (policy, limits).
	Refusals atomic.Int64
	// Reconnects counts links that came up again after going down.
	Reconnects atomic.Int64
	// CreditStalls counts the times a stream's reader had to wait for the
	// peer's credit.
	CreditStalls atomic.Int64
	// Resent counts frames sent again because the carrier they went out
	// on died or stalled before the peer acknowledged them.
	Resent atomic.Int64
	// CarrierStalls counts carriers taken out of the choice because they
	// delivered nothing for a while.
	CarrierStalls atomic.Int64
	// Resumes counts links resumed after losing their last carrier.
	Resumes atomic.Int64
	// ForwardConns counts the connections each forward accepted, by its
	// listen address.
	forwardConns sync.Map // string -> *atomic.Int64
}

// ForwardConns is how many connections the forward listening on bind has
// accepted.
func (s *Stats) ForwardConns(bind string) int64 {
	if v, ok := s.forwardConns.Load(bind); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (s *Stats) countForward(bind string) {
	v, _ := s.forwardConns.LoadOrStore(bind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
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
}

// env is what every actor of a node shares.
type env struct {
	sys        *actor.ActorSystem
	log        *slog.Logger
	limit      *ratelog.Limiter // repeated warnings a peer can cause, one per cause per interval
	cfg        Config
	wg         sync.WaitGroup // every goroutine the node starts
	links      linkSet
	stats      Stats
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

	// noSeq leaves CapSeq out of this node's HELLOs; tests use it to play
	// a peer that does not sequence frames.
	noSeq bool

	// minVersion and maxVersion are what this node's HELLO offers; tests
	// change them to play a peer of another version.
	minVersion, maxVersion uint8
	// now is the clock HELLOs carry and are checked against; tests skew it.
	now func() time.Time
	// replay remembers the nonces of authenticated HELLOs.
	replay *engine.ReplayCache
	// failed carries a fatal forward failure (ExitOnForwardFailure).
	failed     chan error
	failedOnce sync.Once
}

// fail reports a fatal error to Node.Failed, once.
func (e *env) fail(err error) {
	e.failedOnce.Do(func() { e.failed <- err })
}

// spawnLink starts a Link actor unless the node is closing.
func (e *env) spawnLink(p actor.Producer) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	pid := e.sys.Root.Spawn(e.props(p))
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
	if cfg.AllowListen == nil {
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
	if cfg.Carriers > MaxCarriers {
		return nil, fmt.Errorf("%d carriers per link: the most is %d", cfg.Carriers, MaxCarriers)
	}
	if cfg.DialTarget == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		cfg.DialTarget = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	e := &env{cfg: cfg, log: cfg.Logger, limit: ratelog.New(0), done: make(chan struct{}), linkPIDs: make(map[string]*actor.PID), linkDone: make(map[string]chan struct{}),
		seqLinks:   make(map[engine.LinkID]*actor.PID),
		minVersion: engine.MinVersion, maxVersion: engine.Version,
		now: time.Now, replay: engine.NewReplayCache(100_000), failed: make(chan error, 1)}
	lib := slog.New(libHandler{cfg.Logger.Handler()}).With("lib", "protoactor")
	e.sys = actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return lib }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	e.dispatcher = newWorkerDispatcher(300)
	e.supervisor = actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		e.log.Error("actor failed; stopping it", "reason", reason)
		return actor.StopDirective
	})
	e.sys.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*actor.DeadLetterEvent); ok {
			releaseMessage(dl.Message)
		}
	})
	e.links.env = e
	n := &Node{env: e}
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

// AddForward listens for f and carries its connections over the newest
// live link.
func (n *Node) AddForward(f forward.Forward) error {
	if f.UDP {
		return n.addUDPForward(f)
	}
	ln, err := net.Listen("tcp", f.Bind)
	if err != nil {
		return fmt.Errorf("forward %v: %w", f, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		ln.Close()
		return ErrClosed
	}
	n.env.log.Info("forward listening", "listen", ln.Addr().String(), "target", f.Target)
	pid := n.env.sys.Root.Spawn(n.env.props(func() actor.Actor { return newListener(n.env, ln, f) }))
	n.addForwardPID(pid, f.Bind, ln.Addr())
	n.listeners = append(n.listeners, ln)
	return nil
}

// addProxy listens for -D on bind.
func (n *Node) addProxy(bind string) error {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return fmt.Errorf("-D %s: %w", bind, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		ln.Close()
		return ErrClosed
	}
	n.env.log.Info("proxy listening", "listen", ln.Addr().String(), "protocols", "socks5,http-connect")
	pid := n.env.sys.Root.Spawn(n.env.props(func() actor.Actor {
		l := newListener(n.env, ln, forward.Forward{Bind: ln.Addr().String(), Target: "(proxy)"})
		l.proxy, l.proxyBind = true, bind
		return l
	}))
	n.addForwardPID(pid, "D:"+bind, ln.Addr())
	n.listeners = append(n.listeners, ln)
	return nil
}

func (n *Node) addUDPForward(f forward.Forward) error {
	addr, err := net.ResolveUDPAddr("udp", f.Bind)
	if err != nil {
		return fmt.Errorf("forward %v: %w", f, err)
	}
	pc, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("forward %v: %w", f, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		pc.Close()
		return ErrClosed
	}
	n.env.log.Info("forward listening", "listen", pc.LocalAddr().String()+"/udp", "target", f.Target)
	pid := n.env.sys.Root.Spawn(n.env.props(func() actor.Actor { return newUDPListener(n.env, pc, f) }))
	n.addForwardPID(pid, f.Bind+"/udp", pc.LocalAddr())
	return nil
}

// addForwardPID records a forward's Listener; n.mu is held.
func (n *Node) addForwardPID(pid *actor.PID, bind string, addr net.Addr) {
	n.forwards = append(n.forwards, pid)
	n.fwdBinds = append(n.fwdBinds, bind)
	n.fwdAddrs = append(n.fwdAddrs, addr)
}

// ForwardKey names a forward for RemoveForward: its bind address, with
// "/udp" for a UDP forward.
func ForwardKey(f forward.Forward) string {
	if f.UDP {
		return f.Bind + "/udp"
	}
	return f.Bind
}

// ForwardKeyed is a forward or a -D, as configuration reload compares them.
type ForwardKeyed struct {
	Forward forward.Forward
	Proxy   string
}

// ProxyKey names a -D for RemoveForward.
func ProxyKey(bind string) string { return "D:" + bind }

// AddProxy starts a -D proxy listening on bind.
func (n *Node) AddProxy(bind string) error { return n.addProxy(bind) }

// RemoveForward stops the forward (or -D) key names from accepting;
// streams it already carries go on untouched.
func (n *Node) RemoveForward(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, b := range n.fwdBinds {
		if b == key {
			n.env.sys.Root.Stop(n.forwards[i])
			n.env.log.Info("forward removed", "listen", n.fwdAddrs[i].String())
			n.forwards = append(n.forwards[:i], n.forwards[i+1:]...)
			n.fwdBinds = append(n.fwdBinds[:i], n.fwdBinds[i+1:]...)
			n.fwdAddrs = append(n.fwdAddrs[:i], n.fwdAddrs[i+1:]...)
			return true
		}
	}
	return false
}

// ForwardAddrs are the addresses the forwards listen on, in order.
func (n *Node) ForwardAddrs() []net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]net.Addr(nil), n.fwdAddrs...)
}

// Serve accepts carrier connections on ln, one link each, until ln is
// closed or the node is. A TCP listener is gated first (gateLinks): the
// carriers pending their handshake are bounded.
func (n *Node) Serve(ln net.Listener) {
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
		if !n.env.spawnLink(func() actor.Actor { return newLink(n.env, c, nil) }) {
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
	if !n.env.spawnLink(func() actor.Actor {
		l := newLink(n.env, c, nil)
		l.onEnd = ended
		return l
	}) {
		c.Close()
		ended <- ErrClosed
	}
	return ended
}

// Connect keeps a link to the peer d reaches, redialling with backoff when
// it drops, until the node is closed.
func (n *Node) Connect(d carriers.Dialer) {
	n.env.spawnLink(func() actor.Actor { return newLink(n.env, nil, d) })
}

// DialStream opens a stream to target over the node's newest link (waiting
// up to the open timeout for one) and returns it as a net.Conn once the
// peer has opened it: what is written to it arrives at target, as if
// dialled from the peer. A peer that cannot (or may not) reach target gives
// an *OpenError with its reason; no link gives ErrNoLink. It is how a link
// rides on a stream of another (--via), and how a shared upstream is
// reached through a tunnel.
func (n *Node) DialStream(ctx context.Context, target string) (net.Conn, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("dial stream %q: %w", target, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if n.dialer == nil {
		n.dialer = n.env.sys.Root.Spawn(n.env.props(func() actor.Actor {
			return newListener(n.env, nil, forward.Forward{Bind: "stream", Target: ""})
		}))
	}
	near, far := net.Pipe()
	opened := make(chan error, 1)
	n.env.send(n.dialer, &accepted{conn: far, target: target, opened: opened})
	n.mu.Unlock()
	defer n.mu.Lock()
	select {
	case err := <-opened:
		if err != nil {
			near.Close()
			return nil, fmt.Errorf("dial stream %s: %w", target, err)
		}
		return near, nil
	case <-ctx.Done():
		near.Close()
		return nil, ctx.Err()
	}
}

// Failed delivers a fatal error: a -R the peer refused, with
// ExitOnForwardFailure set.
func (n *Node) Failed() <-chan error { return n.env.failed }

// Stats are the node's counters.
func (n *Node) Stats() *Stats { return &n.env.stats }

// Close says GOAWAY on every link, closes every socket at once and waits
// for every actor and goroutine of the node to end.
func (n *Node) Close() error { return n.Shutdown(0) }

// Redial makes every dialling link that is waiting to redial dial now.
func (n *Node) Redial() {
	n.env.mu.Lock()
	defer n.env.mu.Unlock()
	for _, pid := range n.env.linkPIDs {
		n.env.send(pid, &redialNow{})
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
	// Links say GOAWAY and wait (briefly) for it to be written.
	var futs []*actor.Future
	for _, pid := range links {
		futs = append(futs, n.env.sys.Root.RequestFuture(pid, &shutdown{drain: drain}, drain+3*time.Second))
	}
	for _, f := range futs {
		_, _ = f.Result()
	}
	for _, pid := range links {
		n.env.sys.Root.Stop(pid)
	}
	// A Link is done once its Carrier, Scheduler and Streams have stopped
	// too, so no actor starts a goroutine after the Wait below begins.
	for _, done := range dones {
		<-done
	}
	n.env.wg.Wait()
	n.env.dispatcher.stop()
	n.env.sys.Shutdown()
	return nil
}

// linkSet is the set of links that are up, newest last; a forward uses the
// newest.
type linkSet struct {
	mu       sync.Mutex
	pids     []*actor.PID
	watchers map[string]*actor.PID // Listeners waiting on links, by id
	env      *env
}

func (s *linkSet) add(p *actor.PID) {
	s.mu.Lock()
	s.pids = append(s.pids, p)
	for _, w := range s.watchers {
		s.env.send(w, &linkAvailable{})
	}
	s.mu.Unlock()
}

func (s *linkSet) watch(p *actor.PID) {
	s.mu.Lock()
	if s.watchers == nil {
		s.watchers = make(map[string]*actor.PID)
	}
	s.watchers[p.Id] = p
	s.mu.Unlock()
}

func (s *linkSet) unwatch(p *actor.PID) {
	s.mu.Lock()
	delete(s.watchers, p.Id)
	s.mu.Unlock()
}

func (s *linkSet) remove(p *actor.PID) {
	s.mu.Lock()
	for i, q := range s.pids {
		if q.Equal(p) {
			s.pids = append(s.pids[:i], s.pids[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
}

func (s *linkSet) newest() *actor.PID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pids) == 0 {
		return nil
	}
	return s.pids[len(s.pids)-1]
}

// releaseMessage frees what a message sent to an actor that had already
// stopped was carrying: its buffer goes back to the pool, its socket is
// closed. Without it a message racing an actor's end would leak them.
func releaseMessage(msg any) {
	switch m := msg.(type) {
	case *engine.Frame:
		m.Release()
	case *inFrame:
		m.f.Release()
	case *dataIn:
		for _, b := range m.bufs {
			engine.PutBuffer(b)
		}
	case *dataOut:
		for _, f := range m.frames {
			f.Release()
		}
	case *closeCarrier:
		if m.last != nil {
			m.last.Release()
		}
	case *openStream:
		m.conn.Close()
	case *accepted:
		m.conn.Close()
	case *dialDone:
		if m.conn != nil {
			m.conn.Close()
		}
	case *handshakeDone:
		m.conn.Close()
	case *joinCarrier:
		m.done.conn.Close()
	case *retryJoin:
		m.done.conn.Close()
	case *pinned:
		m.f.Release()
	case *carrierAttached:
		if m.first != nil {
			m.first.Release()
		}
	default:
		releaseShareMessage(msg)
	}
}

// LinkStatus is one link as its Link actor sees it.
type LinkStatus struct {
	Peer          string        `json:"peer"`
	Up            bool          `json:"up"`
	Role          string        `json:"role"`
	Authenticated bool          `json:"authenticated"`
	RTT           time.Duration `json:"rtt_ns"`
	Streams       int           `json:"streams_open"`
	Carriers      int           `json:"carriers"`
	Resuming      bool          `json:"resuming,omitempty"`
	// CarrierBytesIn is, per carrier, oldest first, the bytes of
	// sequenced frames that arrived on it (CapSeq links): how the peer
	// striped the link.
	CarrierBytesIn []uint64  `json:"carrier_bytes_in,omitempty"`
	Since          time.Time `json:"since,omitzero"`
}

// ForwardStatus is one forward.
type ForwardStatus struct {
	Listen string `json:"listen"`
	Conns  int64  `json:"connections"`
}

// Status is a snapshot of a node for sockmux status and metrics.
type Status struct {
	Links            []LinkStatus    `json:"links"`
	Forwards         []ForwardStatus `json:"forwards"`
	BytesIn          int64           `json:"bytes_in"`
	BytesOut         int64           `json:"bytes_out"`
	StreamsOpened    int64           `json:"streams_opened"`
	StreamsClosed    int64           `json:"streams_closed"`
	Refusals         int64           `json:"refusals"`
	Reconnects       int64           `json:"reconnects"`
	CreditStalls     int64           `json:"credit_stalls"`
	DroppedDatagrams int64           `json:"dropped_datagrams"`
	DialFailures     int64           `json:"dial_failures"`
	// Resent, CarrierStalls and Resumes are the striping counters of
	// Stats.
	Resent        int64 `json:"frames_resent"`
	CarrierStalls int64 `json:"carrier_stalls"`
	Resumes       int64 `json:"resumes"`
}

// Status asks every link for its state (waiting up to a second for each)
// and reads the counters.
func (n *Node) Status() Status {
	st := &n.env.stats
	s := Status{
		BytesIn: st.BytesIn.Load(), BytesOut: st.BytesOut.Load(),
		StreamsOpened: st.StreamsOpened.Load(), StreamsClosed: st.StreamsClosed.Load(),
		Refusals: st.Refusals.Load(), Reconnects: st.Reconnects.Load(), CreditStalls: st.CreditStalls.Load(),
		DroppedDatagrams: st.DroppedDatagrams.Load(), DialFailures: st.DialFailures.Load(),
		Resent: st.Resent.Load(), CarrierStalls: st.CarrierStalls.Load(), Resumes: st.Resumes.Load(),
	}
	n.mu.Lock()
	for i, b := range n.fwdBinds {
		s.Forwards = append(s.Forwards, ForwardStatus{Listen: n.fwdAddrs[i].String(), Conns: st.ForwardConns(b)})
	}
	n.mu.Unlock()
	n.env.mu.Lock()
	var futs []*actor.Future
	for _, pid := range n.env.linkPIDs {
		futs = append(futs, n.env.sys.Root.RequestFuture(pid, &statusReq{}, time.Second))
	}
	n.env.mu.Unlock()
	for _, f := range futs {
		if r, err := f.Result(); err == nil {
			if ls, ok := r.(*LinkStatus); ok {
				s.Links = append(s.Links, *ls)
			}
		}
	}
	return s
}
