package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flynn/noise"
)

// The handshake of one carrier, as a state machine with no I/O: frames
// the peer sent go in (Input), frames to send come out (Output), and the
// outcome is Result once Done. The caller reads and writes the carrier,
// keeps the deadline, and passes the clock in.
//
// The sequence (PROTOCOL.md §5):
//
//	both:      HELLO ->                       (versions, role, capabilities, limits, freshness)
//	           <- HELLO                       negotiate; a mismatch is a GOAWAY
//	keyed:     AUTH ->                        Noise NNpsk0, prologue both HELLOs (noise.go)
//	           <- AUTH                        the channel is up: records from here on, each way
//	join:      <- ACK (or GOAWAY)             the dialler of a join waits for the accepter's answer
//
// On a keyed carrier the frames after the accepter's AUTH, both ways, are
// sealed in records (record.go): Output seals what it returns from then
// on, and Channel hands the caller the RecordOpener for what it reads next.
//
// A refusal of ours goes out as a GOAWAY with its code before Done; a
// GOAWAY of the peer ends the handshake with ErrPeerRefused and the
// peer's reason.

// HandshakeConfig is one side's part in a handshake.
type HandshakeConfig struct {
	// Hello is this side's HELLO; the handshake adds the key capability,
	// the link extensions and the freshness (nonce and clock) to it.
	Hello *Hello
	// Key is the pre-shared key, or nil for none.
	Key []byte
	// MaxSkew is the largest clock difference accepted from a keyed peer.
	MaxSkew time.Duration
	// Replay remembers the nonces of keyed HELLOs (nil: no replay check).
	Replay *ReplayCache
	// Link, when set, offers CapSeq with these link extensions; a join
	// then waits for the accepter's ACK.
	Link *LinkHello
	// Identity is this side's static key pair, or nil for none: with one,
	// a peer that has one too runs the XX handshake (identity.go).
	Identity *noise.DHKey
	// RequireIdentity refuses a peer with no identity (CapNeedIdentity).
	RequireIdentity bool
	// VerifyPeer judges the peer's static key in an XX handshake; an
	// error refuses the link with it as the reason. nil admits any key,
	// which then does not authenticate the peer.
	VerifyPeer func(pub []byte) error
}

// HandshakeResult is what a handshake that succeeded agreed.
type HandshakeResult struct {
	Params Params
	// Authed is true when both sides proved the pre-shared key, or
	// VerifyPeer admitted the peer's static key.
	Authed bool
	// PeerKey is the peer's static public key (XX handshakes only).
	PeerKey []byte
	// Sealer and Opener are the carrier's record layer (keyed carriers
	// only): every byte written from now on is sealed by Sealer, every
	// byte read is opened by Opener.
	Sealer *RecordSealer
	Opener *RecordOpener
	// Link is the peer's link extensions (CapSeq links only).
	Link LinkHello
	// JoinAck is the accepter's answer to our join: what it had received.
	JoinAck Ack
}

type handshakeState uint8

const (
	wantHello handshakeState = iota
	wantAuth
	wantVerdict // the dialer of an XX handshake: the accepter's last AUTH
	wantJoinAck
	handshakeOver
)

// Handshake runs one side of a carrier's handshake.
type Handshake struct {
	cfg    HandshakeConfig
	state  handshakeState
	ours   []byte // our HELLO payload, which AUTH covers
	theirs []byte // the peer's
	peer   *Hello
	res    HandshakeResult
	err    error
	out    [][]byte // encoded frames waiting for Output
	noise  *noise.HandshakeState
	xx     bool          // the identity handshake (identity.go), not NNpsk0
	sealer *RecordSealer // set once the Noise handshake is over
	opener *RecordOpener
}

// NewHandshake starts a handshake at now: our HELLO is the first Output.
func NewHandshake(cfg HandshakeConfig, now time.Time) *Handshake {
	h := &Handshake{cfg: cfg}
	if cfg.Key != nil {
		cfg.Hello.Capabilities |= CapPSK
	}
	if cfg.Identity != nil {
		cfg.Hello.Capabilities |= CapIdentity
	}
	if cfg.RequireIdentity {
		cfg.Hello.Capabilities |= CapNeedIdentity
	}
	if cfg.Link != nil {
		SetLinkHello(cfg.Hello, *cfg.Link)
	}
	AddFreshness(cfg.Hello, now)
	h.ours = AppendHello(nil, cfg.Hello)
	h.send(TypeHello, h.ours)
	return h
}

// Output returns the frames to write to the carrier, in order, each
// encoded; the caller owns them.
func (h *Handshake) Output() [][]byte {
	out := h.out
	h.out = nil
	return out
}

// Done tells whether the handshake is over, with a result or an error.
func (h *Handshake) Done() bool { return h.state == handshakeOver }

// Result is the outcome once Done.
func (h *Handshake) Result() (HandshakeResult, error) { return h.res, h.err }

// Expecting names what the handshake waits for, for a read error's text.
func (h *Handshake) Expecting() string {
	switch h.state {
	case wantHello:
		return "HELLO"
	case wantAuth:
		return "AUTH"
	case wantVerdict:
		return "the listener's verdict on our identity"
	case wantJoinAck:
		return "the answer to our join"
	}
	return "nothing"
}

// Channel is the record layer once the Noise handshake is over (nil, nil
// before, and on a carrier with no key): the caller reads every byte that
// follows the peer's last AUTH, the bytes it has buffered included,
// through the RecordOpener. Output is sealed by the RecordSealer already.
func (h *Handshake) Channel() (*RecordSealer, *RecordOpener) { return h.sealer, h.opener }

// ReaderSettings is how the carrier's frames after the peer's HELLO are
// read: the negotiated version and payload limit, and whether they carry
// sequence numbers. Before the HELLO, version is 0 (the HELLO's own
// encoding).
func (h *Handshake) ReaderSettings() (version uint8, maxPayload uint32, seq bool) {
	if h.peer == nil {
		return 0, 0, false
	}
	p := h.res.Params
	return p.Version, p.RecvMax, p.Capabilities&CapSeq != 0
}

// ReadFailed ends the handshake because the carrier could not be read:
// err is the reader's error. A protocol error is told to the peer.
func (h *Handshake) ReadFailed(err error) {
	if h.Done() {
		return
	}
	if h.state == wantVerdict && h.cfg.Key != nil {
		// The listener could not open our last message (XXpsk3) and said
		// so in clear, which our records cannot read, and closed.
		h.end(fmt.Errorf("%w: the listener did not take our last handshake message: the pre-shared keys differ, or it was altered on the way (%w)", ErrKeyMismatch, err))
		return
	}
	err = fmt.Errorf("reading %s: %w", h.Expecting(), err)
	if errors.Is(err, ErrProtocol) {
		h.refuse(CodeProtocol, err)
		return
	}
	h.end(err)
}

// Input takes the next frame the peer sent, at now. The frame is the
// caller's: Input copies what it keeps.
func (h *Handshake) Input(f *Frame, now time.Time) {
	switch h.state {
	case wantHello:
		h.hello(f, now)
	case wantAuth, wantVerdict:
		h.auth(f)
	case wantJoinAck:
		h.joinAck(f)
	}
}

func (h *Handshake) hello(f *Frame, now time.Time) {
	if f.Type != TypeHello {
		h.refuse(CodeProtocol, fmt.Errorf("reading HELLO: %w: %v", ErrStreamState, f.Type))
		return
	}
	h.theirs = append([]byte(nil), f.Bytes()...)
	peer, err := ParseHello(h.theirs)
	if err != nil {
		h.refuse(CodeProtocol, fmt.Errorf("reading HELLO: %w", err))
		return
	}
	p, err := Negotiate(h.cfg.Hello, peer)
	if err != nil {
		code := CodeProtocol
		if errors.Is(err, ErrVersion) {
			code = CodeVersion
		}
		h.refuse(code, err)
		return
	}
	if p.Capabilities&CapSeq != 0 {
		if h.res.Link, err = ParseLinkHello(peer); err != nil {
			h.refuse(CodeProtocol, err)
			return
		}
	}
	h.peer, h.res.Params = peer, p
	peerKey := peer.Capabilities&CapPSK != 0
	identities := h.cfg.Identity != nil && peer.Capabilities&CapIdentity != 0
	switch {
	case identities && (h.cfg.Key == nil) != !peerKey:
		// both keys or none: the psk checks below say which is missing
	case identities:
		if err := CheckFreshness(peer, now, h.cfg.MaxSkew, h.cfg.Replay); err != nil {
			h.refuse(CodeAuth, err)
			return
		}
		h.startIdentity(h.prologue())
		return
	case h.cfg.RequireIdentity:
		h.refuse(CodeAuth, ErrNoPeerIdentity)
		return
	case peer.Capabilities&CapNeedIdentity != 0:
		h.refuse(CodeAuth, ErrNoLocalIdentity)
		return
	}
	switch {
	case h.cfg.Key == nil && !peerKey:
		h.authDone()
		return
	case h.cfg.Key == nil:
		h.refuse(CodeAuth, ErrNoLocalKey)
		return
	case !peerKey:
		h.refuse(CodeAuth, ErrNoPeerKey)
		return
	}
	if err := CheckFreshness(peer, now, h.cfg.MaxSkew, h.cfg.Replay); err != nil {
		h.refuse(CodeAuth, err)
		return
	}
	hs, err := NewNoiseHandshake(h.cfg.Key, h.cfg.Hello.Role == RoleDialer, h.prologue())
	if err != nil {
		h.refuse(CodeInternal, fmt.Errorf("starting the Noise handshake: %w", err))
		return
	}
	h.noise = hs
	h.state = wantAuth
	if h.cfg.Hello.Role == RoleDialer {
		msg, _, _, err := hs.WriteMessage(nil, nil)
		if err != nil {
			h.refuse(CodeInternal, fmt.Errorf("writing the Noise handshake: %w", err))
			return
		}
		h.send(TypeAuth, msg)
	}
}

// prologue is the Noise prologue: both HELLOs, the dialer's first.
func (h *Handshake) prologue() []byte {
	dialer, accepter := h.ours, h.theirs
	if h.cfg.Hello.Role != RoleDialer {
		dialer, accepter = accepter, dialer
	}
	return NoisePrologue(dialer, accepter)
}

func (h *Handshake) auth(f *Frame) {
	switch f.Type {
	case TypeAuth:
	case TypeGoAway:
		h.peerRefused(f)
		return
	default:
		h.refuse(CodeProtocol, fmt.Errorf("%w: %v during the handshake, want AUTH", ErrStreamState, f.Type))
		return
	}
	if h.xx {
		h.authXX(f)
		return
	}
	_, c1, c2, err := h.noise.ReadMessage(nil, f.Bytes())
	if err != nil {
		h.refuse(CodeAuth, fmt.Errorf("%w (or a HELLO was altered on the way): %v", ErrKeyMismatch, err))
		return
	}
	if c1 == nil { // the accepter, after the dialer's first message: answer it
		var msg []byte
		if msg, c1, c2, err = h.noise.WriteMessage(nil, nil); err != nil {
			h.refuse(CodeInternal, fmt.Errorf("writing the Noise handshake: %w", err))
			return
		}
		h.send(TypeAuth, msg)
		h.sealer, h.opener = NewRecordSealer(c2), NewRecordOpener(c1)
	} else {
		h.sealer, h.opener = NewRecordSealer(c1), NewRecordOpener(c2)
	}
	h.noise = nil
	h.res.Authed = true
	h.res.Sealer, h.res.Opener = h.sealer, h.opener
	h.authDone()
}

// authDone moves on once both sides are satisfied: to the join's answer
// for a dialler that asked to join, or to the end.
func (h *Handshake) authDone() {
	if l := h.cfg.Link; l != nil && l.Join && h.res.Params.Capabilities&CapSeq != 0 {
		h.state = wantJoinAck
		return
	}
	h.end(nil)
}

func (h *Handshake) joinAck(f *Frame) {
	switch f.Type {
	case TypeAck:
		a, err := ParseAck(f.Bytes())
		if err != nil {
			h.refuse(CodeProtocol, err)
			return
		}
		h.res.JoinAck = a
		h.end(nil)
	case TypeGoAway:
		h.peerRefused(f)
	default:
		h.refuse(CodeProtocol, fmt.Errorf("%w: %v in answer to a join, want ACK", ErrStreamState, f.Type))
	}
}

// peerRefused ends the handshake with the peer's GOAWAY, its code mapped
// to the error it means.
func (h *Handshake) peerRefused(f *Frame) {
	reason, _ := ParseReason(f.Bytes())
	var cause error
	switch reason.Code {
	case CodeAuth:
		cause = ErrAuth
		if strings.Contains(reason.Text, ErrKeyMismatch.Error()) {
			cause = ErrKeyMismatch // the peer's Noise message did not open
		}
	case CodeVersion:
		cause = ErrVersion
	case CodeUnknownLink, CodeResumeExpired:
		if h.state == wantJoinAck {
			cause = ErrUnknownLink
		}
	}
	if cause != nil {
		// The peer's text may begin with what cause says: say it once.
		rest, found := strings.CutPrefix(reason.Text, cause.Error())
		if !found && rest != "" {
			rest = ": " + rest
		}
		h.end(fmt.Errorf("%w: %w%s", ErrPeerRefused, cause, rest))
		return
	}
	h.end(fmt.Errorf("%w: %v", ErrPeerRefused, reason))
}

// refuse tells the peer why the handshake ends, and ends it with err.
func (h *Handshake) refuse(code Code, err error) {
	h.send(TypeGoAway, AppendReason(nil, code, err.Error()))
	h.end(err)
}

func (h *Handshake) end(err error) {
	h.state, h.err = handshakeOver, err
	if err != nil {
		h.res = HandshakeResult{}
	}
}

// send queues one frame, encoded at the version of our HELLO's header.
func (h *Handshake) send(t Type, payload []byte) {
	f := &Frame{Type: t}
	if len(payload) > 0 {
		f.Payload = GetBuffer(len(payload))
		copy(f.Payload.B, payload)
	}
	b := AppendFrame(nil, f, h.cfg.Hello.MaxVersion)
	f.Release()
	if h.sealer != nil {
		sealed, err := h.sealer.Seal(nil, b)
		if err != nil { // the first records of a fresh key: cannot happen
			h.state, h.err = handshakeOver, err
			return
		}
		b = sealed
	}
	h.out = append(h.out, b)
}
