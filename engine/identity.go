package engine

import (
	"fmt"

	"github.com/flynn/noise"
)

// Identities (PROTOCOL.md §5.4). A peer with a static X25519 key pair
// sets CapIdentity; one that will refuse a peer without one (a listener
// with authorized keys, a dialler that pins the listener's key) also sets
// CapNeedIdentity. When both peers have an identity, AUTH frames carry a
// Noise_XX_25519_AESGCM_SHA256 handshake (Noise_XXpsk3 when both also
// have a pre-shared key), on the same prologue as NNpsk0:
//
//	AUTH ->   e
//	<- AUTH   e, ee, s, es          the dialler checks the listener's key (pin)
//	AUTH ->   s, se [, psk]         the accepter checks the dialler's (authorized keys)
//	<- AUTH   (empty, sealed)       the accepter's verdict: admitted
//
// A key refused is a GOAWAY with CodeAuth and the reason: in clear from
// the dialler (no channel yet), sealed from the accepter. XX rather than
// IK: the dialler need not know the listener's key beforehand (the
// unknown-key refusal and --trust-new need it sent), and the dialler's
// identity goes out only once the listener's is proven, hidden from an
// active attacker too.
const (
	// CapIdentity is the capability bit of a peer with a static key.
	CapIdentity uint32 = 1 << 3
	// CapNeedIdentity is the capability bit of a peer that refuses a peer
	// without a static key.
	CapNeedIdentity uint32 = 1 << 4
)

// Identity errors; each matches ErrAuth.
var (
	// ErrNoPeerIdentity is a peer without an identity when this side
	// requires one.
	ErrNoPeerIdentity = authErr("peer has no identity; this side requires one (--identity)")
	// ErrNoLocalIdentity is a peer that requires an identity this side
	// does not have.
	ErrNoLocalIdentity = authErr("peer requires an identity; none is configured here (make one with sockmux keygen, pass --identity FILE)")
	// ErrIdentityRefused is a peer's static key this side's check
	// refused (not authorized, not the pinned key, not known).
	ErrIdentityRefused = authErr("identity refused")
	// ErrIdentityHandshake is a Noise XX message that does not open.
	ErrIdentityHandshake = authErr("identity handshake failed")
)

// NewIdentityHandshake starts one side's Noise handshake with a static
// key (XX, or XXpsk3 when key is not nil); the dialer is the initiator.
func NewIdentityHandshake(static noise.DHKey, key []byte, dialer bool, prologue []byte) (*noise.HandshakeState, error) {
	cfg := noise.Config{
		CipherSuite:   NoiseSuite,
		Pattern:       noise.HandshakeXX,
		Initiator:     dialer,
		Prologue:      prologue,
		StaticKeypair: static,
	}
	if key != nil {
		cfg.PresharedKey, cfg.PresharedKeyPlacement = NoisePSK(key), 3
	}
	return noise.NewHandshakeState(cfg)
}

// startIdentity begins the XX handshake, once both HELLOs are in.
func (h *Handshake) startIdentity(prologue []byte) {
	hs, err := NewIdentityHandshake(*h.cfg.Identity, h.cfg.Key, h.cfg.Hello.Role == RoleDialer, prologue)
	if err != nil {
		h.refuse(CodeInternal, fmt.Errorf("starting the Noise handshake: %w", err))
		return
	}
	h.noise, h.xx, h.state = hs, true, wantAuth
	if h.cfg.Hello.Role == RoleDialer {
		msg, _, _, err := hs.WriteMessage(nil, nil)
		if err != nil {
			h.refuse(CodeInternal, fmt.Errorf("writing the Noise handshake: %w", err))
			return
		}
		h.send(TypeAuth, msg)
	}
}

// authXX takes one AUTH of the XX handshake.
func (h *Handshake) authXX(f *Frame) {
	dialer := h.cfg.Hello.Role == RoleDialer
	if h.state == wantVerdict { // the accepter's sealed, empty AUTH: admitted
		if f.Len() != 0 {
			h.refuse(CodeProtocol, fmt.Errorf("%w: an AUTH verdict of %d bytes", ErrMalformed, f.Len()))
			return
		}
		h.authDone()
		return
	}
	_, c1, c2, err := h.noise.ReadMessage(nil, f.Bytes())
	if err != nil {
		why := "a HELLO was altered on the way"
		if h.cfg.Key != nil {
			why = "the pre-shared keys differ, or a HELLO was altered on the way"
		}
		h.refuse(CodeAuth, fmt.Errorf("%w (%s): %v", ErrIdentityHandshake, why, err))
		return
	}
	switch {
	case !dialer && c1 == nil: // the dialer's first: answer with our key
		msg, _, _, err := h.noise.WriteMessage(nil, nil)
		if err != nil {
			h.refuse(CodeInternal, fmt.Errorf("writing the Noise handshake: %w", err))
			return
		}
		h.send(TypeAuth, msg)
	case dialer: // the listener's key is in: check it, then show ours
		if !h.verify() {
			return
		}
		msg, cs1, cs2, err := h.noise.WriteMessage(nil, nil)
		if err != nil {
			h.refuse(CodeInternal, fmt.Errorf("writing the Noise handshake: %w", err))
			return
		}
		h.send(TypeAuth, msg)
		h.channel(NewRecordSealer(cs1), NewRecordOpener(cs2))
		h.state = wantVerdict
	default: // the dialer's key is in, and the channel is up
		h.channel(NewRecordSealer(c2), NewRecordOpener(c1))
		if !h.verify() { // the refusal goes out sealed
			return
		}
		h.send(TypeAuth, nil)
		h.authDone()
	}
}

// verify puts the peer's static key to the configured check; false when
// it refused (the handshake is over then).
func (h *Handshake) verify() bool {
	pub := append([]byte(nil), h.noise.PeerStatic()...)
	h.res.PeerKey = pub
	if h.cfg.VerifyPeer == nil {
		return true
	}
	if err := h.cfg.VerifyPeer(pub); err != nil {
		h.refuse(CodeAuth, fmt.Errorf("%w: %w", ErrIdentityRefused, err))
		return false
	}
	h.res.Authed = true
	return true
}

// channel makes the record layer current: what is sent from now on is
// sealed, and Channel hands the opener to the caller.
func (h *Handshake) channel(s *RecordSealer, o *RecordOpener) {
	h.sealer, h.opener = s, o
	h.res.Sealer, h.res.Opener = s, o
	if h.cfg.Key != nil {
		h.res.Authed = true // XXpsk3: the psk is proven by the last message
	}
}
