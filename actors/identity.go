package actors

// Public-key identities on a link: the handshake's part (this side's key,
// the check of the peer's), the permissions of an authorized key, and what
// a reload of the authorized keys does to the links that run.

import (
	"bytes"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/forward"
)

// denyAll is the policy of a link whose key is no longer authorized,
// until it is closed.
var denyAll = forward.MustTargetPolicy()

// authorizedChanged tells a Link that the authorized keys changed.
type authorizedChanged struct{}

// identityHandshake adds this side's identity and the check of the
// peer's key to a handshake: an accepter admits the keys of its
// authorized keys (when it has some); a dialler the listener's key
// pinned by PeerKey or the known hosts file.
func (l *linkActor) identityHandshake(hs *handshaker) {
	cfg := &l.env.cfg
	if cfg.Identity == nil {
		return
	}
	k := cfg.Identity.DHKey()
	hs.identity = &k
	if l.dialer != nil {
		// A dialler that pins listeners refuses one with no identity: it
		// would otherwise fall back to a handshake that proves nothing
		// about the listener.
		hs.requireIdentity = cfg.PeerKey != nil || cfg.KnownHosts != ""
		host := l.peer
		hs.verifyPeer = func(pub []byte) error { return l.env.verifyListener(host, identity.PublicKey(pub)) }
		return
	}
	if l.env.policies().AuthorizedKeys != nil {
		hs.requireIdentity = true
		env := l.env
		hs.verifyPeer = func(pub []byte) error {
			k := identity.PublicKey(pub)
			if env.policies().AuthorizedKeys.Lookup(k) == nil {
				return fmt.Errorf("%w: %s", identity.ErrNotAuthorized, k)
			}
			return nil
		}
	}
}

// verifyListener checks the key the listener at host presented: the one
// pinned, else the one the known hosts file names, else, with TrustNew,
// recorded there; a listener nothing names is refused with its key, for
// the user to pin.
func (e *env) verifyListener(host string, key identity.PublicKey) error {
	cfg := &e.cfg
	if cfg.PeerKey != nil {
		if *cfg.PeerKey != key {
			return fmt.Errorf("%w: %s presented %s, --peer-key pins %s", identity.ErrHostKeyMismatch, host, key, cfg.PeerKey)
		}
		return nil
	}
	if cfg.KnownHosts != "" {
		kh, err := identity.LoadKnownHosts(cfg.KnownHosts)
		if err != nil {
			return err
		}
		if known, ok := kh.Lookup(host); ok {
			if known != key {
				return fmt.Errorf("%w: %s presented %s, %s pins %s (if the listener's key was changed on purpose, remove its line)",
					identity.ErrHostKeyMismatch, host, key, cfg.KnownHosts, known)
			}
			return nil
		}
		if cfg.TrustNew {
			if err := identity.AddKnownHost(cfg.KnownHosts, host, key); err != nil {
				return fmt.Errorf("recording the listener's key: %w", err)
			}
			e.log.Warn("listener's key recorded in the known hosts (--trust-new)", "peer", host, "key", key.String(), "known_hosts", cfg.KnownHosts)
			return nil
		}
	}
	where := "--known-hosts FILE --trust-new"
	if cfg.KnownHosts != "" {
		where = "--trust-new"
	}
	return fmt.Errorf("%w: %s presented %s; if that is the listener's key, pin it with --peer-key '%s' or record it with %s",
		identity.ErrUnknownHostKey, host, key, key, where)
}

// peerEntry is the authorized key of the peer of this accepted link, or
// nil (no identity, no authorized keys, or the key was removed).
func (l *linkActor) peerEntry() *identity.Entry {
	if l.peerKey == nil {
		return nil
	}
	return l.env.policies().AuthorizedKeys.Lookup(*l.peerKey)
}

// keyChecked tells whether the peer's permissions come from an
// authorized key: an accepted link whose peer showed a key, on a node
// with authorized keys.
func (l *linkActor) keyChecked() bool {
	return l.dialer == nil && l.peerKey != nil && l.env.policies().AuthorizedKeys != nil
}

// permitTarget is the permit-target of the peer's key, when it limits
// what the peer may reach (a removed key reaches nothing).
func (l *linkActor) permitTarget() (*forward.TargetPolicy, bool) {
	if !l.keyChecked() {
		return nil, false
	}
	e := l.peerEntry()
	switch {
	case e == nil:
		return denyAll, true
	case e.PermitTarget != nil:
		return e.PermitTarget, true
	}
	return nil, false
}

// permitListen says whether the peer's key lets it ask for a -R on addr.
func (l *linkActor) permitListen(addr string) bool {
	if !l.keyChecked() {
		return true
	}
	e := l.peerEntry()
	return e != nil && (e.PermitListen == nil || e.PermitListen.Allows(addr))
}

// identityUp takes the peer's key from a session's first carrier: its
// name, when its authorized key has one, is what logs and status call
// the peer from now on.
func (l *linkActor) identityUp(m *handshakeDone) {
	l.peerKey = nil
	if len(m.peerKey) == identity.KeyLen {
		k := identity.PublicKey(m.peerKey)
		l.peerKey = &k
	}
	if e := l.peerEntry(); e != nil && e.Name != "" && l.dialer == nil {
		l.name, l.peer = e.Name, e.Name
	}
}

// sameIdentity says whether a joining carrier showed the key the link's
// first carrier did.
func (l *linkActor) sameIdentity(m *handshakeDone) bool {
	if l.peerKey == nil {
		return len(m.peerKey) == 0
	}
	return bytes.Equal(m.peerKey, l.peerKey[:])
}

// authorizedKeysChanged closes the link of a peer whose key is no longer
// authorized; the other links go on, with their key's new permissions.
func (l *linkActor) authorizedKeysChanged(ctx actor.Context) {
	if !l.up || !l.keyChecked() || l.downReason != nil {
		return
	}
	e := l.peerEntry()
	if e != nil {
		if e.Name != "" {
			l.name, l.peer = e.Name, e.Name
		}
		return
	}
	l.downReason = fmt.Errorf("%w: %s", errKeyRevoked, *l.peerKey)
	l.env.log.Warn("peer's key removed from the authorized keys; closing its link", "peer", l.peer, "key", l.peerKey.String())
	l.closeSession(ctx, func() *engine.Frame {
		return engine.NewReason(engine.TypeGoAway, 0, engine.CodeAuth, "this side no longer authorizes your key "+l.peerKey.String())
	})
}

// peerKeyText is the peer's key for a log line, or "".
func (l *linkActor) peerKeyText() string {
	if l.peerKey == nil {
		return ""
	}
	return l.peerKey.String()
}
