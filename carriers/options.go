package carriers

import (
	"log/slog"

	"github.com/sockmux/sockmux/internal/preauth"
)

// Option configures NewDialer and Listen.
type Option func(*options)

type options struct {
	tls     TLSConfig
	log     *slog.Logger
	preauth preauth.Config
	proxy   proxyChoice
	binds   *bindSet // nil: the system's choice of source
}

// WithTLS gives the certificates and the verification of a tls:// carrier;
// other kinds ignore it.
func WithTLS(c TLSConfig) Option {
	return func(o *options) { o.tls = c }
}

// WithLogger is where carriers log: the fingerprint of a TLS listener's
// certificate, failed TLS handshakes on a listener (one line per 10 s, the
// next one counting those left out), the connections its gate evicted or
// refused (likewise), a burst of accept errors (when it starts and when it
// ends), and the stderr lines of an exec: command. slog.Default() when not
// given; nil discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		o.log = l
	}
}

// WithPreauth sets the limits on a tls:// listener's pending TLS
// handshakes (see package preauth): the defaults when not given, with
// carriers.DialTimeout as the handshake timeout and the listener's logger;
// other kinds ignore it.
func WithPreauth(c preauth.Config) Option {
	return func(o *options) { o.preauth = c }
}

func newOptions(opts []Option) *options {
	o := &options{log: slog.Default()}
	for _, opt := range opts {
		opt(o)
	}
	return o
}
