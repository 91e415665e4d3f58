package sockmux

// A Peer: what the sockmux command runs, links to any number of peers and
// the forwards over them, for programs that want all of it.

import (
	"context"
	"net"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/peernode"
)

// Peer is one side of sockmux as the command runs it (`sockmux listen`,
// `connect`, `stdio`, `run`): links to any number of peers, dialled
// (Connect) or accepted (Serve), kept up with redials and resumed, and the
// forwards over them, -L, -R, -D and UDP, each as the command line's own.
// Where a Session hands its streams to the program, a Peer carries them
// between sockets itself: each accepted connection and each stream an
// actor of the link's pipeline, no goroutine copying between them.
//
// A Peer's links are its peers' equals: either side may forward, and the
// policies (PeerConfig, SetPolicies) say what each side allows the other.
type Peer struct {
	node *actors.Node
}

func init() {
	peernode.Of = func(p any) *actors.Node { return p.(*Peer).node }
}

// NewPeer starts a peer with cfg (nil: a zero PeerConfig). Its forwards
// listen at once, so an address that cannot be listened on is an error
// here, and nothing is left running.
func NewPeer(cfg *PeerConfig) (*Peer, error) {
	if cfg == nil {
		cfg = &PeerConfig{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n, err := actors.NewNode(cfg.actors())
	if err != nil {
		return nil, err
	}
	return &Peer{node: n}, nil
}

// Serve accepts carrier connections on ln, one link each (or a further
// carrier of a link, or one resuming it), until ln or the peer is closed.
// A TCP listener is gated: the connections pending their handshake are
// bounded in all and per source.
func (p *Peer) Serve(ln net.Listener) { p.node.Serve(ln) }

// ServeKeyed is Serve for links that authenticate with key alone (a
// pre-shared key): the peer's own key, identity and authorized keys are
// not asked of them. It gives one peer a second door for a second kind of
// peer (a hub cluster's hubs reach each other this way). A key too short
// is an error, and ln is not served.
func (p *Peer) ServeKeyed(ln net.Listener, key []byte) error { return p.node.ServeKeyed(ln, key) }

// ServeConn runs one link, as the accepting side, on a carrier connection
// made elsewhere (`sockmux stdio`'s stdin and stdout). The channel is told
// how the link ended: nil for an orderly end, the reason otherwise,
// ErrPeerClosed if the peer was closing.
func (p *Peer) ServeConn(c net.Conn) <-chan error { return p.node.ServeConn(c) }

// Connect keeps a link to the peer d reaches, redialling with backoff when
// it drops, until the peer is closed. The failover dialers are other
// addresses of that peer, tried in order when d fails, and after a link
// lost for good; every carrier of the link goes to the address in use.
// Make dialers with carriers.NewDialer.
func (p *Peer) Connect(d carriers.Dialer, failover ...carriers.Dialer) {
	p.node.Connect(d, failover...)
}

// DialStream opens a stream to target (host:port) over the newest link,
// dialled by the peer, and returns it as a net.Conn once the peer has
// opened it. A peer that cannot or may not reach target gives an
// *OpenError; no link within the open timeout gives a net.Error whose
// Timeout is true. A link can ride on such a stream (a carriers.Dialer
// over DialStream is `--via`).
func (p *Peer) DialStream(ctx context.Context, target string) (net.Conn, error) {
	return p.node.DialStream(ctx, target)
}

// OpenStream carries conn over a new stream to target, dialled by the
// peer, as a -L forward carries a connection it accepted: it returns once
// the peer opened the stream (or with why not, as DialStream), and the
// stream owns conn from then on, closing it when the stream ends (Reset,
// when conn is a Resetter and the stream was cut short). On an error conn
// is closed.
func (p *Peer) OpenStream(ctx context.Context, conn net.Conn, target string) error {
	return p.node.OpenStream(ctx, conn, target)
}

// AddForward starts a -L forward (TCP or UDP) and listens for it now.
func (p *Peer) AddForward(f Forward) error { return p.node.AddForward(f) }

// AddProxy starts a -D proxy (SOCKS5 and HTTP CONNECT) listening on bind.
func (p *Peer) AddProxy(bind string) error { return p.node.AddProxy(bind) }

// RemoveForward stops the forward or proxy key names (ForwardKey,
// ProxyKey) from accepting; the streams it carries go on. It says whether
// there was one.
func (p *Peer) RemoveForward(key string) bool { return p.node.RemoveForward(key) }

// ForwardAddrs are the addresses the forwards listen on, in order (a
// forward on port 0 shows the port it got).
func (p *Peer) ForwardAddrs() []net.Addr { return p.node.ForwardAddrs() }

// ForwardKey names a forward for RemoveForward: its bind address, with
// "/udp" for a UDP one.
func ForwardKey(f Forward) string { return actors.ForwardKey(f) }

// ProxyKey names a -D proxy for RemoveForward.
func ProxyKey(bind string) string { return actors.ProxyKey(bind) }

// SetRemotes replaces the -R forwards asked for on every link, now and on
// every link that comes up: the new ones are asked for, the dropped ones
// released, and one whose target alone changed goes on listening, its
// new connections going to the new target. It says how many of each.
func (p *Peer) SetRemotes(want []Forward) (added, removed, retargeted int) {
	return p.node.SetRemotes(want)
}

// Policies are what the peer allows its peers now.
func (p *Peer) Policies() Policies { return p.node.Policies() }

// SetPolicies replaces what the peer allows its peers, at once, for what
// they ask next; links of authorized keys it removed are closed.
func (p *Peer) SetPolicies(pol Policies) { p.node.SetPolicies(pol) }

// Status is a snapshot of the peer's links, carriers, streams and
// forwards.
func (p *Peer) Status() Status { return p.node.Status() }

// Stats are the peer's live counters.
func (p *Peer) Stats() *Stats { return p.node.Stats() }

// Failed delivers an error that ends the peer's purpose: a -R its peer
// refused with ExitOnForwardFailure, a first link that cannot succeed
// with FailFast, dialling given up (MaxRetries, ConnectTimeout).
func (p *Peer) Failed() <-chan error { return p.node.Failed() }

// Redial makes every dialling link that is waiting to redial dial now.
func (p *Peer) Redial() { p.node.Redial() }

// Shutdown stops accepting, says GOAWAY on every link, lets open streams
// finish for up to drain, then closes everything and waits for every
// goroutine of the peer to end.
// A peer already shut down gives ErrPeerClosed.
func (p *Peer) Shutdown(drain time.Duration) error { return p.node.Shutdown(drain) }

// Close is Shutdown with no drain.
func (p *Peer) Close() error { return p.Shutdown(0) }

// EndDrain ends a Shutdown's drain now (or the next one's before it
// begins): the links still draining are closed, and the streams still open
// are reset. sockmux calls it on a second Ctrl-C.
func (p *Peer) EndDrain() { p.node.EndDrain() }
