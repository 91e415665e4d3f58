package sockmux

// A Share: many clients on one upstream session (`sockmux share`).

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/carriers"
)

// SlowPolicy is what a Share does with a client too slow to take what
// the upstream sends: SlowWait (the zero value), SlowDrop or
// SlowDisconnect.
type SlowPolicy = actors.SlowPolicy

// The slow-client policies of a Share.
const (
	// SlowWait stops reading the upstream while a client's buffer is
	// full, until it has drained to half; a client full for SlowTimeout
	// is disconnected. Every client still connected gets every byte.
	SlowWait = actors.SlowWait
	// SlowDrop drops the oldest bytes waiting for the slow client.
	SlowDrop = actors.SlowDrop
	// SlowDisconnect closes the slow client at once.
	SlowDisconnect = actors.SlowDisconnect
)

// DefaultSlowTimeout is SlowWait's limit when ShareConfig.SlowTimeout is 0.
const DefaultSlowTimeout = actors.DefaultSlowTimeout

// ParseSlowPolicy parses "wait", "drop" or "disconnect".
func ParseSlowPolicy(s string) (SlowPolicy, error) { return actors.ParseSlowPolicy(s) }

// UpstreamKind parses an UPSTREAM (tcp://host:port, fifo:READ,WRITE,
// exec:COMMAND or tunnel:ADDR,host:port) and says its kind: tcp, fifo,
// exec or tunnel. An error wraps ErrBadUpstream.
func UpstreamKind(spec string, opts ...carriers.Option) (string, error) {
	u, err := actors.ParseUpstream(spec, opts...)
	if err != nil {
		return "", err
	}
	return u.Kind, nil
}

// ShareConfig is what a Share runs.
type ShareConfig struct {
	// Logger receives the share's logs (nil: none).
	Logger *slog.Logger
	// Listen is the host:port clients connect to ("127.0.0.1:0" picks a
	// port: Addr says which).
	Listen string
	// Upstream is what the clients share (see UpstreamKind).
	Upstream string
	// CarrierOptions configure the upstream's dialer (a tunnel link's
	// TLS, for instance).
	CarrierOptions []carriers.Option
	// ClientBuffer bounds, per client, the upstream's bytes waiting to be
	// written to it (1 MiB when 0); Replay is how many of the upstream's
	// last bytes a new client receives first (0: none, at most
	// ClientBuffer).
	ClientBuffer, Replay int
	// Slow is what happens to a client whose buffer is full; SlowTimeout
	// is SlowWait's limit (DefaultSlowTimeout when 0).
	Slow        SlowPolicy
	SlowTimeout time.Duration
	// Tunnel is the link of a tunnel: upstream, through a sockmux peer:
	// its key, identity and pins.
	Tunnel PeerConfig
}

// Share shares one upstream session among many clients: each client's
// bytes go to the upstream, and the upstream's to every client, through
// a bounded buffer per client; the upstream is redialled with backoff
// when it drops.
type Share struct {
	s      *actors.Share
	tunnel *Peer // a tunnel: upstream's link; nil for another kind
}

// NewShare listens for clients on cfg.Listen and starts sharing
// cfg.Upstream. An UPSTREAM that does not parse is ErrBadUpstream.
//
// A tunnel: upstream is reached through a Peer of the share's own, with
// cfg.Tunnel: it keeps a link to the tunnel's ADDR, and each upstream
// session is a stream of it (Peer.DialStream) to the tunnel's host:port.
func NewShare(cfg ShareConfig) (*Share, error) {
	acfg := actors.ShareConfig{
		Logger: cfg.Logger, Listen: cfg.Listen, Upstream: cfg.Upstream, CarrierOptions: cfg.CarrierOptions,
		ClientBuffer: cfg.ClientBuffer, Replay: cfg.Replay, Slow: cfg.Slow, SlowTimeout: cfg.SlowTimeout,
	}
	opts := cfg.CarrierOptions
	if cfg.Logger != nil { // an exec: tunnel's command logs its stderr
		opts = append([]carriers.Option{carriers.WithLogger(cfg.Logger)}, opts...)
	}
	up, err := actors.ParseUpstream(cfg.Upstream, opts...)
	if err != nil {
		return nil, err
	}
	var tunnel *Peer
	if via, target, ok := up.Tunnel(); ok {
		tcfg := cfg.Tunnel
		tcfg.Logger = cfg.Logger
		tcfg.Forwards, tcfg.Remotes, tcfg.Dynamic, tcfg.OnLink = nil, nil, nil, nil
		if tunnel, err = NewPeer(&tcfg); err != nil {
			return nil, err
		}
		tunnel.Connect(via)
		acfg.DialUpstream = func(ctx context.Context) (net.Conn, error) { return tunnel.DialStream(ctx, target) }
	}
	s, err := actors.NewShare(acfg)
	if err != nil {
		if tunnel != nil {
			tunnel.Close()
		}
		return nil, err
	}
	return &Share{s: s, tunnel: tunnel}, nil
}

// ShareStats are a Share's counters at one moment.
type ShareStats = actors.ShareStats

// ShareClientStats are one connected client's counters.
type ShareClientStats = actors.ShareClientStats

// Addr is where the share listens for clients.
func (s *Share) Addr() net.Addr { return s.s.Addr() }

// Failed delivers the tunnel: upstream's link failing for good (with
// Tunnel.FailFast, a key the peer refuses before the link was ever up);
// it never does for other upstreams.
func (s *Share) Failed() <-chan error {
	if s.tunnel == nil {
		return nil
	}
	return s.tunnel.Failed()
}

// Redial makes an upstream waiting to be redialled dial now, and a
// tunnel: upstream's link too.
func (s *Share) Redial() {
	if s.tunnel != nil {
		s.tunnel.Redial()
	}
	s.s.Redial()
}

// Stats are the share's counters now.
func (s *Share) Stats() ShareStats { return s.s.Stats() }

// Close disconnects every client and the upstream and waits for the
// share's goroutines to end.
func (s *Share) Close() error {
	err := s.s.Close()
	if s.tunnel != nil {
		if terr := s.tunnel.Close(); err == nil && !errors.Is(terr, ErrPeerClosed) {
			err = terr
		}
	}
	return err
}
