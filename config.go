package sockmux

// A Session's configuration and its defaults, all in DefaultConfig.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/identity"
)

// Config is how a Session runs. Start from DefaultConfig and change what
// you need: Validate refuses zero values where a setting needs one.
type Config struct {
	// Logger receives the session's logs (nil: none).
	Logger *slog.Logger

	// Window is a stream's initial receive window, in bytes; MaxWindow
	// is how far it may grow while the window, not the reader, is what
	// limits the stream (equal to Window: fixed windows).
	Window, MaxWindow uint32
	// LinkBudget bounds how far all streams' windows together may grow
	// beyond their initial size.
	LinkBudget int64
	// MaxStreams bounds the streams open at once; past it the peer's
	// OPENs are refused and Open's streams are reset.
	MaxStreams int
	// AcceptBacklog is how many of the peer's streams may wait for
	// AcceptStream; past it they are refused (ErrAcceptBacklog here, an
	// *OpenError that unwraps to ErrRefused at the opener).
	AcceptBacklog int

	// Keepalive is how often the link pings the peer; a link that hears
	// nothing for three intervals is dropped. Negative: no pings.
	Keepalive time.Duration
	// HandshakeTimeout bounds the handshake on each carrier connection.
	HandshakeTimeout time.Duration
	// OpenTimeout is how long Open waits for a link when none is up (a
	// client resuming).
	OpenTimeout time.Duration

	// Key is a pre-shared key (at least 16 bytes) both peers must hold:
	// the link is authenticated and encrypted with it. nil: none.
	Key []byte
	// Identity is this side's static key pair (identity.Generate): a link
	// between two peers that both have one runs the identity handshake
	// and is encrypted. A client must pin the server's key (PeerKey); a
	// server with AuthorizedKeys admits only the clients they name.
	Identity       *identity.PrivateKey
	PeerKey        *identity.PublicKey
	AuthorizedKeys *identity.AuthorizedKeys

	// Dialer makes another carrier connection to the same server: for
	// striping (Carriers above 1) and for resuming a link whose carriers
	// dropped. A client only; nil: the link lives and dies with its
	// first connection, and (as with one carrier and no ResumeWindow)
	// does not keep what it sent for resending, which makes it cheaper.
	Dialer func(ctx context.Context) (net.Conn, error)
	// Carriers is how many carrier connections a client keeps, the first
	// one included (at most 16); above 1 needs a Dialer, and frames are
	// striped over them. The server takes the extra ones with AddCarrier.
	Carriers int
	// ResumeWindow is how long a link whose carriers all dropped keeps its
	// streams, waiting for the client to dial again. Negative: no
	// resuming.
	ResumeWindow time.Duration
}

// DefaultConfig is the configuration every default of a Session comes
// from.
func DefaultConfig() *Config {
	return &Config{
		Window:           engine.DefaultWindow,    // 256 KiB
		MaxWindow:        engine.DefaultMaxWindow, // 16 MiB
		LinkBudget:       actors.DefaultLinkBudget,
		MaxStreams:       actors.DefaultMaxStreams,
		AcceptBacklog:    256,
		Keepalive:        actors.DefaultKeepalive,
		HandshakeTimeout: 10 * time.Second,
		OpenTimeout:      actors.DefaultOpenTimeout,
		Carriers:         1,
		ResumeWindow:     actors.DefaultResumeWindow,
	}
}

// Validate says what is wrong with c, if anything: each error wraps
// ErrBadConfig and names the field.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadConfig, field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Window < 1024:
		return bad("Window", "%d bytes, the least is 1024", c.Window)
	case c.MaxWindow < c.Window:
		return bad("MaxWindow", "%d bytes, below Window (%d)", c.MaxWindow, c.Window)
	case c.LinkBudget <= 0:
		return bad("LinkBudget", "%d, want above 0", c.LinkBudget)
	case c.MaxStreams <= 0:
		return bad("MaxStreams", "%d, want above 0", c.MaxStreams)
	case c.AcceptBacklog <= 0:
		return bad("AcceptBacklog", "%d, want above 0", c.AcceptBacklog)
	case c.Keepalive == 0:
		return bad("Keepalive", "0: want an interval, or negative for none")
	case c.HandshakeTimeout <= 0:
		return bad("HandshakeTimeout", "%v, want above 0", c.HandshakeTimeout)
	case c.OpenTimeout <= 0:
		return bad("OpenTimeout", "%v, want above 0", c.OpenTimeout)
	case c.Carriers < 1 || c.Carriers > actors.MaxCarriers:
		return bad("Carriers", "%d, want 1 to %d", c.Carriers, actors.MaxCarriers)
	case c.Carriers > 1 && c.Dialer == nil:
		return bad("Carriers", "%d carriers need a Dialer to make the others", c.Carriers)
	case c.ResumeWindow == 0:
		return bad("ResumeWindow", "0: want a duration, or negative for no resuming")
	case (c.PeerKey != nil || c.AuthorizedKeys != nil) && c.Identity == nil:
		return bad("Identity", "PeerKey and AuthorizedKeys need an Identity of this side")
	}
	if c.Key != nil {
		if err := engine.CheckKey(c.Key); err != nil {
			return bad("Key", "%v", err)
		}
	}
	return nil
}

// nodeConfig is the actors' configuration for a Session with c.
func (c *Config) nodeConfig(s *Session) actors.Config {
	return actors.Config{
		Logger:           c.Logger,
		Window:           c.Window,
		MaxWindow:        c.MaxWindow,
		LinkBudget:       c.LinkBudget,
		MaxStreams:       c.MaxStreams,
		Keepalive:        c.Keepalive,
		HandshakeTimeout: c.HandshakeTimeout,
		OpenTimeout:      c.OpenTimeout,
		Key:              c.Key,
		Identity:         c.Identity,
		PeerKey:          c.PeerKey,
		AuthorizedKeys:   c.AuthorizedKeys,
		Carriers:         c.Carriers,
		ResumeWindow:     c.ResumeWindow,
		Unsequenced:      !s.server && !c.canResume(),
		MaxPayload:       c.maxPayload(s.server),
		AcceptStream:     s.offer,
		SingleSession:    true,
		OnLink:           s.linkEvent,
		System:           actors.SharedSystem(), // one for every Session (actors/system.go)
	}
}

// canResume says whether a client with c could ever add a carrier to its
// link or resume it: only with a Dialer, and to stripe or to resume. A
// client that cannot does not sequence its link (actors.Config.Unsequenced):
// a frame is let go once written instead of kept until the peer
// acknowledges it, which only a second carrier could use.
func (c *Config) canResume() bool {
	return c.Dialer != nil && (c.Carriers > 1 || c.ResumeWindow > 0)
}

// libraryMaxPayload is the largest DATA payload a Session takes on a link
// that is not sequenced: four times engine.DefaultMaxPayload, so a bulk
// stream costs a quarter of the frames, carrier writes and wake-ups per
// byte. A link uses the least of its two HELLOs' sizes.
const libraryMaxPayload = 256 << 10

// maxPayload is what a Session's HELLO offers: libraryMaxPayload, but
// engine.DefaultMaxPayload (0) from a client that sequences its link,
// whose resend and reorder limits count frames of at most that size. A
// server offers the larger size whatever the client: a sequencing client
// offers the smaller one, and that is what both then send.
func (c *Config) maxPayload(server bool) uint32 {
	if server || !c.canResume() {
		return libraryMaxPayload
	}
	return 0
}
