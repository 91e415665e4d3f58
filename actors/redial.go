package actors

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
)

// Redialling: when a dialling link tries again, and when it gives up.

// retry dials again after a failed attempt (err), at the next address of
// the link's failover list (at once, or after the backoff once a round of
// them has failed), unless retrying is over: before the first link, an
// error retrying cannot fix at every address in turn (Config.FailFast and
// a permanent one; with Config.SingleSession any), or the connect timeout
// spent; at any time, more failed attempts in a row than
// Config.MaxRetries. Then the node fails with the reason (Node.Failed)
// and the link dials no more. A carrier that fails to join (or resume) a
// live session is redialled at the same address after the backoff.
func (l *linkActor) retry(err error) {
	if l.up { // a carrier added to (or resuming) a link that is up: the resume window bounds it
		l.scheduleRedial()
		return
	}
	l.failures++
	if permanentError(err) {
		l.permanent++
	} else {
		l.permanent = 0
	}
	cfg := &l.env.cfg
	every := len(l.addrs.dialers) // a single address: its first failure
	var fatal error
	switch {
	case l.gen == 0 && cfg.SingleSession && l.failures >= every:
		fatal = err
	case l.gen == 0 && cfg.FailFast && l.permanent >= every:
		fatal = err
	case cfg.MaxRetries > 0 && l.failures > cfg.MaxRetries:
		fatal = fmt.Errorf("%w: %d attempts failed in a row: %w", errGaveUp, l.failures, err)
	case l.gen == 0 && cfg.ConnectTimeout > 0 && time.Since(l.firstDial) >= cfg.ConnectTimeout:
		fatal = fmt.Errorf("%w: no link within the connect timeout (%v): %w", errGaveUp, cfg.ConnectTimeout, err)
	}
	if fatal == nil {
		now := l.addrs.attemptFailed()
		l.moved("attempt failed", now)
		if now {
			l.dial()
			return
		}
		l.scheduleRedial()
		return
	}
	// The link stays, idle, until the node closes (a redial at SIGHUP
	// would still try again): stopping here would race the shutdown that
	// the failure brings.
	l.env.log.Error("giving up on the link", "peer", l.peer, "err", fatal)
	l.env.fail(fmt.Errorf("link to %s: %w", l.peer, fatal))
}

// permanentError says whether a failed dial or handshake would fail again
// the same way however often it is retried: a key, a certificate, a
// version, an address, a proxy's credentials or a WebSocket path that is
// wrong, not a peer (or a proxy's way to it) that is away.
func permanentError(err error) bool {
	for _, p := range []error{engine.ErrAuth, engine.ErrVersion, engine.ErrBadMagic,
		carriers.ErrFingerprint, carriers.ErrUnknownCA, carriers.ErrTLSConfig, carriers.ErrBadAddress,
		carriers.ErrBadProxy, carriers.ErrProxyAuth, carriers.ErrProxyForbidden, carriers.ErrNotWebSocket} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

func (l *linkActor) scheduleRedial() {
	if l.timer != nil {
		return
	}
	d := time.Duration(float64(l.backoff) * (0.75 + rand.Float64()/2))
	l.backoff = min(2*l.backoff, l.env.cfg.MaxBackoff)
	l.env.log.Info("link redial scheduled", "peer", l.peer, "in", d.Round(time.Millisecond))
	self := l.self
	l.timer = time.AfterFunc(d, func() { l.env.send(self, &redialTick{}) })
}
