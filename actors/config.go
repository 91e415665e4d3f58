package actors

// What a Node is configured with, and the defaults.

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/proxy"
)

// Config is what a Node needs to run.
type Config struct {
	// Logger receives sockmux's logs and, one level down, protoactor's
	// (those of the node's own actor system: a shared System's are its
	// own, and SharedSystem drops them).
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
	// Identity is this side's static key pair (--identity), or nil: with
	// one, a peer that has one too runs the identity handshake.
	Identity *identity.PrivateKey
	// AuthorizedKeys, when set (it needs an Identity), are the only peer
	// keys this side admits, each with its permissions; Node.SetPolicies
	// replaces them.
	AuthorizedKeys *identity.AuthorizedKeys
	// PeerKey pins the listener's key (a dialling node; it needs an
	// Identity).
	PeerKey *identity.PublicKey
	// KnownHosts is a known hosts file that pins listeners by address;
	// TrustNew records the key of one it does not name (ssh's
	// StrictHostKeyChecking=accept-new) instead of refusing it. With a
	// dialling Identity and neither PeerKey nor a known key, the link is
	// refused with the listener's key in the reason.
	KnownHosts string
	TrustNew   bool
	// ExitOnForwardFailure makes a refused -R fatal: Node.Failed reports it.
	ExitOnForwardFailure bool
	// FailFast makes a dialling link whose first link fails for a reason
	// retrying cannot fix (a wrong or missing key, a certificate that does
	// not verify, no common version, a bad address) stop and report it to
	// Node.Failed instead of redialling, as an interactive ssh does.
	FailFast bool
	// MaxRetries, when above 0, bounds the failed attempts in a row
	// (dials and handshakes) a dialling link makes before it gives up
	// (Node.Failed: "gave up dialling").
	MaxRetries int
	// ConnectTimeout, when above 0, is how long a dialling link keeps
	// trying for its first link before it gives up (Node.Failed: "gave
	// up dialling").
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
	// dialTarget dials a target for a stream the peer opened (a net.Dialer
	// with a 10 s timeout when nil).
	dialTarget func(ctx context.Context, addr string) (net.Conn, error)
	// fdLimit is the file descriptor limit the peers' streams are shared
	// by (the process's RLIMIT_NOFILE when 0; a test sets a small one).
	fdLimit int
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
	// RemoteBindAddr, when set, is the host this side binds a peer's -R
	// on when the -R asks for all addresses ("*", "", 0.0.0.0 or ::).
	RemoteBindAddr string
	// Pool names the pool this side's -R forwards join at the peer:
	// links that ask the same peer for the same address (TCP, or UDP)
	// under the same pool name share its listening socket (pool.go,
	// pool_udp.go). "" pools nothing.
	Pool string
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
	// BindWatcher, when set, is told of every TCP reverse forward this
	// node listens on for its peers (pooled or not), and again when its
	// members change or it stops listening (Members 0): the hub cluster's
	// directory lists them (binds_watch.go). It is called from the
	// node's actors and must not block.
	BindWatcher func(ReverseBind)
	// Carriers is how many carrier connections a dialling link keeps to
	// its peer (1 when 0, at most MaxCarriers): one stream's frames are
	// striped across them. It needs a peer that sequences frames (CapSeq).
	Carriers int
	// AcceptStream, when set, is handed the local end of every stream the
	// peer opens, instead of this side dialling its target (the library's
	// Session.Accept): the target policies do not apply, the application
	// decides what a target means (LocalConn.Target). It runs inside the
	// Link's actors and must not block; an error refuses the stream
	// (OPEN_FAIL with its text). UDP streams are refused, and so are the
	// peer's BINDs (-R) unless AllowListen is set.
	AcceptStream func(c *LocalConn) error
	// SingleSession makes a dialling link one session: a first attempt
	// that fails is fatal (Node.Failed, with its reason), and a session
	// that ends is not redialled. Carriers are still added and resumed
	// within it (the library's Client).
	SingleSession bool
	// ResumeWindow is how long a CapSeq link whose last carrier dropped
	// keeps its streams, waiting for the dialler to resume it
	// (DefaultResumeWindow when 0; negative turns resumption off).
	ResumeWindow time.Duration
	// Unsequenced leaves sequencing (CapSeq) out of this node's HELLOs, so
	// its links neither number their frames nor keep each one until the
	// peer acknowledges it: such a link is never striped or resumed. For
	// a dialler that could do neither anyway (the library's Client with no
	// Dialer, or with one carrier and no resuming), whose links then skip
	// the work and the memory of the resend buffer.
	Unsequenced bool
	// System is the actor system the node's actors run on, shared with
	// other nodes (SharedSystem); nil: the node starts one of its own and
	// stops it on Close. The library's Sessions share one, as a process's
	// links share the command's Node.
	System *System
}

// Liveness defaults.
const (
	DefaultKeepalive   = 15 * time.Second
	DefaultOpenTimeout = 10 * time.Second
)

// DefaultMaxStreams is the default limit of streams open on one link.
const DefaultMaxStreams = 1024

// DefaultMaxBinds is the default limit of one peer's reverse forwards.
const DefaultMaxBinds = 64

// DefaultLinkBudget is how much the windows of one link's streams may grow,
// together, beyond their initial size: 64 MiB.
const DefaultLinkBudget = 64 << 20
