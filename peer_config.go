package sockmux

// A Peer's configuration: its links' settings, its forwards and the
// policies it applies to its peers, with the types they are made of.

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/proxy"
)

// Forward is one forward: a -L (Bind listened on here, Target dialled by
// the peer), or a -R (Bind listened on by the peer, Target dialled here),
// of TCP or UDP. Parse one with ParseLocal or ParseRemote.
type Forward = forward.Forward

// TargetPolicy is a list of host:port patterns (`*` for any host or port,
// CIDRs, ranges) an address must match: what a peer may reach, or where
// it may ask this side to listen. Make one with ParseTargetPolicy.
type TargetPolicy = forward.TargetPolicy

// ProxyAuth is the username and password a SOCKS5 client of a -D must
// give.
type ProxyAuth = proxy.ProxyAuth

// Policies are what a Peer allows its peers, replaced whole and at once
// by Peer.SetPolicies (a reload): targets, listen addresses, -D's direct
// destinations and its SOCKS5 credentials, the pre-shared key and the
// authorized keys (a change closes the links of the keys it removed).
type Policies = actors.Policies

// LinkEvent is a link of a Peer coming up (Up) or going down (Err says
// why).
type LinkEvent = actors.LinkEvent

// ReverseBind is a reverse forward a Peer listens on for its peers, as
// PeerConfig.BindWatcher is told of it.
type ReverseBind = actors.ReverseBind

// Status is a snapshot of a Peer: its links, their carriers and streams,
// its forwards (the JSON `sockmux status --json` prints).
type Status = actors.Status

// LinkStatus is one link in a Status.
type LinkStatus = actors.LinkStatus

// RemoteStatus is one -R of a link in a LinkStatus, with the peer's answer.
type RemoteStatus = actors.RemoteStatus

// Stats are a Peer's live counters (streams opened and closed, bytes each
// way), read with their atomic Load.
type Stats = actors.Stats

// Resetter is a connection given to Peer.OpenStream that can be cut short
// as a reset rather than closed cleanly: the stream calls Reset when it
// was reset, so what reads the connection can tell a truncated stream
// from a clean end. A TCP socket needs none (it is sent an RST).
type Resetter = actors.Resetter

// Defaults of a PeerConfig's zero values.
const (
	DefaultMaxBinds     = actors.DefaultMaxBinds     // a peer's -R held here at most
	DefaultUDPIdle      = actors.DefaultUDPIdle      // a UDP client session's idle limit
	DefaultUDPMax       = actors.DefaultUDPMax       // UDP client sessions per forward
	DefaultResumeWindow = actors.DefaultResumeWindow // how long a dropped link waits to resume
	DefaultKeepalive    = actors.DefaultKeepalive    // PING interval
	DefaultOpenTimeout  = actors.DefaultOpenTimeout  // a forwarded connection's wait for a link
	DefaultMaxStreams   = actors.DefaultMaxStreams   // streams open on one link
	MaxCarriers         = actors.MaxCarriers         // carrier connections of one link at most
)

// ParseLocal parses a -L specification, `[bind:]port:host:hostport` (with
// `/udp` after the port for a UDP forward), listening on defaultBind when
// it names no address.
func ParseLocal(spec, defaultBind string) (Forward, error) {
	return forward.ParseForwardBind(spec, defaultBind)
}

// ParseRemote parses a -R specification, `[bind:]port:host:hostport` or
// `[bind:]port:socks` (a SOCKS5/HTTP proxy served here for the peer's
// connections).
func ParseRemote(spec string) (Forward, error) { return forward.ParseRemote(spec) }

// ParseTargetPolicy parses host:port patterns into a TargetPolicy.
func ParseTargetPolicy(patterns ...string) (*TargetPolicy, error) {
	return forward.ParseTargetPolicy(patterns...)
}

// PeerConfig is what a Peer runs: the settings of its links, the forwards
// it listens for and asks its peers for, and what it allows them. The
// zero value of a field is its default, as named on it; a Peer with a
// zero PeerConfig is a keyless peer with no forwards, which lets its
// authenticated peers reach any target and the others loopback only.
type PeerConfig struct {
	// Logger receives the peer's logs (nil: none).
	Logger *slog.Logger

	// Forwards are the -L forwards: each listens here and carries every
	// connection it accepts to its Target, dialled by the peer.
	Forwards []Forward
	// Remotes are the -R forwards, asked for on every link that comes up:
	// the peer listens on Bind and this side dials Target.
	Remotes []Forward
	// Dynamic are the -D addresses: a SOCKS5 and HTTP CONNECT proxy on
	// each, whose connections leave the tunnel at the peer.
	Dynamic []string
	// ProxyAuth is what a SOCKS5 client of Dynamic (or of a "-R
	// port:socks" served here) must give; nil: none.
	ProxyAuth *ProxyAuth
	// Direct are the destinations a Dynamic proxy dials here instead of
	// through the tunnel; nil: none.
	Direct *TargetPolicy
	// ExitOnForwardFailure makes a refused -R fatal: Failed reports it.
	ExitOnForwardFailure bool
	// Pool names the pool this side's Remotes join at the peer: links
	// that ask one peer for the same address under the same pool name
	// share it, and it spreads their connections. "": no pool.
	Pool string

	// AllowTargets are the targets this side dials for its peers; nil:
	// any for an authenticated peer, loopback only otherwise.
	AllowTargets *TargetPolicy
	// AllowListen are the addresses a peer may ask this side to listen
	// on; nil: loopback only (ssh's GatewayPorts no).
	AllowListen *TargetPolicy
	// RemoteBindAddr, when set, is the host a peer's -R for all addresses
	// ("*", "", 0.0.0.0 or ::) is bound on here.
	RemoteBindAddr string
	// BindWatcher, when set, is told of every TCP reverse forward this
	// side listens on for its peers, again when its members change, and
	// when it stops (Members 0). It is called from the peer's actors and
	// must not block.
	BindWatcher func(ReverseBind)

	// Key is a pre-shared key (at least 16 bytes) both peers must hold:
	// the links are authenticated and encrypted with it. nil: none.
	Key []byte
	// Identity is this side's key pair; AuthorizedKeys (a listener's)
	// are the peer keys it admits, each with its permissions; PeerKey (a
	// dialler's) pins the listener's key, and so does KnownHosts by
	// address (TrustNew records a key it does not know yet instead of
	// refusing it). Each of them needs an Identity.
	Identity       *identity.PrivateKey
	AuthorizedKeys *identity.AuthorizedKeys
	PeerKey        *identity.PublicKey
	KnownHosts     string
	TrustNew       bool
	// MaxSkew is the clock difference tolerated in an authenticated
	// handshake (5 minutes when 0).
	MaxSkew time.Duration

	// FailFast ends a dialling peer whose first link fails for a reason
	// retrying cannot fix (a wrong key, a certificate that does not
	// verify) instead of redialling: Failed reports it.
	FailFast bool
	// MaxRetries, above 0, bounds the failed attempts in a row a dialling
	// link makes before it gives up; ConnectTimeout, above 0, bounds how
	// long it tries for its first link.
	MaxRetries     int
	ConnectTimeout time.Duration
	// Backoff is the first redial delay (1 s when 0), doubling to
	// MaxBackoff (30 s when 0), with jitter.
	Backoff, MaxBackoff time.Duration
	// OnLink, when set, is called when a link comes up or goes down.
	OnLink func(LinkEvent)

	// Carriers is how many carrier connections a dialling link keeps
	// (1 when 0, at most MaxCarriers): one stream's frames are striped
	// over them.
	Carriers int
	// ResumeWindow is how long a link whose carriers all dropped keeps
	// its streams, waiting to be resumed (DefaultResumeWindow when 0;
	// negative: no resuming).
	ResumeWindow time.Duration
	// Window is a stream's initial receive window and MaxWindow how far
	// it may grow (256 KiB and 16 MiB when 0); LinkBudget bounds how far
	// one link's windows may grow together (64 MiB when 0); MaxPayload
	// is the largest frame payload taken (64 KiB when 0).
	Window, MaxWindow uint32
	LinkBudget        int64
	MaxPayload        uint32
	// MaxStreams bounds the streams open on one link (DefaultMaxStreams
	// when 0); MaxBinds a peer's reverse forwards held here
	// (DefaultMaxBinds when 0).
	MaxStreams, MaxBinds int
	// Keepalive is the PING interval (DefaultKeepalive when 0; negative:
	// none); a link silent for three is dropped. HandshakeTimeout bounds
	// a carrier's handshake (10 s when 0); OpenTimeout how long a
	// forwarded connection waits for a link (DefaultOpenTimeout when 0).
	Keepalive, HandshakeTimeout, OpenTimeout time.Duration
	// UDPIdle closes a UDP forward's client session idle this long
	// (DefaultUDPIdle when 0); UDPMax bounds them per forward
	// (DefaultUDPMax when 0), the least recently active evicted first.
	UDPIdle time.Duration
	UDPMax  int
}

// Validate says what is wrong with c, if anything: each error wraps
// ErrBadConfig and names the field.
func (c *PeerConfig) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadConfig, field, fmt.Sprintf(format, args...))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"MaxSkew", c.MaxSkew}, {"ConnectTimeout", c.ConnectTimeout}, {"Backoff", c.Backoff}, {"MaxBackoff", c.MaxBackoff},
		{"HandshakeTimeout", c.HandshakeTimeout}, {"OpenTimeout", c.OpenTimeout}, {"UDPIdle", c.UDPIdle}} {
		if d.v < 0 {
			return bad(d.name, "%v, must not be negative", d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MaxRetries", c.MaxRetries}, {"MaxStreams", c.MaxStreams}, {"MaxBinds", c.MaxBinds}, {"UDPMax", c.UDPMax}} {
		if n.v < 0 {
			return bad(n.name, "%d, must not be negative", n.v)
		}
	}
	switch {
	case c.Carriers < 0 || c.Carriers > MaxCarriers:
		return bad("Carriers", "%d, want 0 (one) to %d", c.Carriers, MaxCarriers)
	case c.LinkBudget < 0:
		return bad("LinkBudget", "%d, must not be negative", c.LinkBudget)
	case c.MaxWindow != 0 && c.MaxWindow < c.Window:
		return bad("MaxWindow", "%d bytes, below Window (%d)", c.MaxWindow, c.Window)
	case (c.PeerKey != nil || c.AuthorizedKeys != nil || c.KnownHosts != "" || c.TrustNew) && c.Identity == nil:
		return fmt.Errorf("%w: Identity: %w", ErrBadConfig, ErrNeedIdentity)
	case c.TrustNew && c.KnownHosts == "":
		return bad("TrustNew", "a new listener key is recorded in KnownHosts: set it")
	}
	return nil
}

// actors is the actors' configuration of a Peer with c.
func (c *PeerConfig) actors() actors.Config {
	return actors.Config{
		Logger: c.Logger, Forwards: c.Forwards, Remotes: c.Remotes, Dynamic: c.Dynamic, ProxyAuth: c.ProxyAuth,
		Direct: c.Direct, ExitOnForwardFailure: c.ExitOnForwardFailure, Pool: c.Pool,
		AllowTargets: c.AllowTargets, AllowListen: c.AllowListen, RemoteBindAddr: c.RemoteBindAddr, BindWatcher: c.BindWatcher,
		Key: c.Key, Identity: c.Identity, AuthorizedKeys: c.AuthorizedKeys, PeerKey: c.PeerKey,
		KnownHosts: c.KnownHosts, TrustNew: c.TrustNew, MaxSkew: c.MaxSkew,
		FailFast: c.FailFast, MaxRetries: c.MaxRetries, ConnectTimeout: c.ConnectTimeout,
		Backoff: c.Backoff, MaxBackoff: c.MaxBackoff, OnLink: c.OnLink,
		Carriers: c.Carriers, ResumeWindow: c.ResumeWindow,
		Window: c.Window, MaxWindow: c.MaxWindow, LinkBudget: c.LinkBudget, MaxPayload: c.MaxPayload,
		MaxStreams: c.MaxStreams, MaxBinds: c.MaxBinds,
		Keepalive: c.Keepalive, HandshakeTimeout: c.HandshakeTimeout, OpenTimeout: c.OpenTimeout,
		UDPIdle: c.UDPIdle, UDPMax: c.UDPMax,
	}
}
