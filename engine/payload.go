package engine

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// HELLO payload. The first six bytes are fixed for every version, so any
// two builds can tell each other which versions they speak:
//
//	 0               4       5       6       7       8              12             16             20
//	+---------------+-------+-------+-------+-------+--------------+--------------+--------------+
//	| magic "SMUX"  |minver |maxver | role  |  rsv  | capabilities | max payload  |initial window|
//	+---------------+-------+-------+-------+-------+--------------+--------------+--------------+
//	| extensions: repeated { tag u8, length u16, value }, to the end of the payload              |
//	+--------------------------------------------------------------------------------------------+
//
// role is RoleAccepter (0) for the side that accepted the carrier and
// RoleDialer (1) for the side that dialled it. Unknown extension tags are
// ignored, which is how later features (authentication, link ids) are added
// without a new version.
const (
	helloMagic     = "SMUX"
	helloFixedLen  = 20
	helloMinWindow = 1024
)

// Role says which end of the carrier a peer is; it fixes stream id parity.
type Role uint8

// Roles.
const (
	RoleAccepter Role = 0 // opens even stream ids
	RoleDialer   Role = 1 // opens odd stream ids
)

func (r Role) String() string {
	if r == RoleDialer {
		return "dialer"
	}
	return "accepter"
}

// FirstStreamID is the first id a peer of role r allocates; ids then go up
// by two, so the two peers never collide.
func (r Role) FirstStreamID() uint32 {
	if r == RoleDialer {
		return 1
	}
	return 2
}

// Owns reports whether stream id was allocated by a peer of role r.
func (r Role) Owns(id uint32) bool { return id != 0 && id%2 == uint32(r) }

// Hello is the decoded HELLO payload.
type Hello struct {
	MinVersion    uint8
	MaxVersion    uint8
	Role          Role
	Capabilities  uint32
	MaxPayload    uint32
	InitialWindow uint32
	Extensions    map[uint8][]byte
}

// AppendHello appends the HELLO payload for h to dst.
func AppendHello(dst []byte, h *Hello) []byte {
	dst = append(dst, helloMagic...)
	dst = append(dst, h.MinVersion, h.MaxVersion, uint8(h.Role), 0)
	dst = binary.BigEndian.AppendUint32(dst, h.Capabilities)
	dst = binary.BigEndian.AppendUint32(dst, h.MaxPayload)
	dst = binary.BigEndian.AppendUint32(dst, h.InitialWindow)
	for tag, v := range h.Extensions {
		dst = append(dst, tag)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// ParseHello decodes a HELLO payload. Versions are checked by Negotiate,
// not here, so that a peer of another version can still be told which
// versions it and we speak.
func ParseHello(p []byte) (*Hello, error) {
	if len(p) < 4 || string(p[:4]) != helloMagic {
		return nil, ErrBadMagic
	}
	if len(p) < helloFixedLen {
		return nil, fmt.Errorf("%w: HELLO of %d bytes", ErrMalformed, len(p))
	}
	h := &Hello{
		MinVersion:    p[4],
		MaxVersion:    p[5],
		Role:          Role(p[6]),
		Capabilities:  binary.BigEndian.Uint32(p[8:]),
		MaxPayload:    binary.BigEndian.Uint32(p[12:]),
		InitialWindow: binary.BigEndian.Uint32(p[16:]),
	}
	for rest := p[helloFixedLen:]; len(rest) > 0; {
		if len(rest) < 3 {
			return nil, fmt.Errorf("%w: HELLO extension header cut short", ErrMalformed)
		}
		tag, n := rest[0], int(binary.BigEndian.Uint16(rest[1:]))
		if len(rest) < 3+n {
			return nil, fmt.Errorf("%w: HELLO extension %d claims %d bytes, %d left", ErrMalformed, tag, n, len(rest)-3)
		}
		if h.Extensions == nil {
			h.Extensions = make(map[uint8][]byte)
		}
		h.Extensions[tag] = append([]byte(nil), rest[3:3+n]...)
		rest = rest[3+n:]
	}
	return h, nil
}

// Params are what two HELLOs agree on.
type Params struct {
	Version uint8
	// SendMax is the largest payload we may send; RecvMax the largest we
	// accept.
	SendMax, RecvMax uint32
	// SendWindow is the credit each stream starts with for what we send;
	// RecvWindow the credit we grant each stream for what we receive.
	SendWindow, RecvWindow uint32
	// Capabilities both peers have.
	Capabilities uint32
}

// Negotiate checks the peer's HELLO against ours and returns the link's
// parameters. Both peers run it on the same two HELLOs, so both reach the
// same verdict and both can report it.
func Negotiate(local, remote *Hello) (Params, error) {
	if remote.MinVersion > remote.MaxVersion {
		return Params{}, fmt.Errorf("%w: peer's version range %d..%d is empty", ErrMalformed, remote.MinVersion, remote.MaxVersion)
	}
	v := min(local.MaxVersion, remote.MaxVersion)
	if v < max(local.MinVersion, remote.MinVersion) {
		return Params{}, fmt.Errorf("%w: peer speaks versions %d..%d, we speak %d..%d",
			ErrVersion, remote.MinVersion, remote.MaxVersion, local.MinVersion, local.MaxVersion)
	}
	if remote.Role > RoleDialer {
		return Params{}, fmt.Errorf("%w: unknown role %d", ErrMalformed, remote.Role)
	}
	if remote.Role == local.Role {
		return Params{}, fmt.Errorf("%w: both peers claim role %v", ErrMalformed, local.Role)
	}
	if remote.MaxPayload < 1024 {
		return Params{}, fmt.Errorf("%w: peer's max payload %d is below 1024", ErrMalformed, remote.MaxPayload)
	}
	if remote.InitialWindow < helloMinWindow || remote.InitialWindow > MaxWindow {
		return Params{}, fmt.Errorf("%w: peer's initial window %d outside %d..%d", ErrMalformed, remote.InitialWindow, helloMinWindow, MaxWindow)
	}
	return Params{
		Version:      v,
		SendMax:      min(remote.MaxPayload, local.MaxPayload),
		RecvMax:      local.MaxPayload,
		SendWindow:   remote.InitialWindow,
		RecvWindow:   local.InitialWindow,
		Capabilities: local.Capabilities & remote.Capabilities,
	}, nil
}

// OPEN payload:
//
//	 0       1               3
//	+-------+---------------+----------------------+------------------------+
//	| kind  |  target len   | target (UTF-8)       | first bytes (optional) |
//	+-------+---------------+----------------------+------------------------+
//
// kind 0 (TargetDial) asks the receiver to dial target, "host:port". The
// first bytes are stream data that the opener had already read when it
// opened; they count against the stream's initial window.

// TargetKind says what the receiver of OPEN should connect the stream to.
type TargetKind uint8

// Target kinds.
const (
	TargetDial    TargetKind = 0 // TCP dial of "host:port"
	TargetForward TargetKind = 1 // the target of the receiver's own forward, named by its id (decimal)
	TargetUDP     TargetKind = 2 // UDP to "host:port": each DATA frame is one datagram
)

// Open is the decoded OPEN payload. Data aliases the frame's buffer.
type Open struct {
	Kind   TargetKind
	Target string
	Data   []byte
}

// AppendOpen appends an OPEN payload to dst.
func AppendOpen(dst []byte, kind TargetKind, target string, data []byte) []byte {
	dst = append(dst, uint8(kind))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(target)))
	dst = append(dst, target...)
	return append(dst, data...)
}

// ParseOpen decodes an OPEN payload.
func ParseOpen(p []byte) (Open, error) {
	if len(p) < 3 {
		return Open{}, fmt.Errorf("%w: OPEN of %d bytes", ErrMalformed, len(p))
	}
	n := int(binary.BigEndian.Uint16(p[1:]))
	if n == 0 || n > MaxTargetLen || len(p) < 3+n {
		return Open{}, fmt.Errorf("%w: OPEN target of %d bytes in a %d-byte payload", ErrMalformed, n, len(p))
	}
	t := p[3 : 3+n]
	if !utf8.Valid(t) {
		return Open{}, fmt.Errorf("%w: OPEN target is not UTF-8", ErrMalformed)
	}
	return Open{Kind: TargetKind(p[0]), Target: string(t), Data: p[3+n:]}, nil
}

// OPEN_FAIL, RST and GOAWAY carry a reason:
//
//	 0               2
//	+---------------+-------------------------------+
//	|     code      | text (UTF-8, ≤ 1024 bytes)    |
//	+---------------+-------------------------------+

// Code says why a stream or link ended.
type Code uint16

// Reason codes.
const (
	CodeNormal        Code = 0  // orderly end
	CodeProtocol      Code = 1  // the peer broke the protocol
	CodeRefused       Code = 2  // policy does not allow it
	CodeDialFailed    Code = 3  // the target could not be reached
	CodeFlowControl   Code = 4  // DATA beyond the granted credit
	CodeVersion       Code = 5  // no common protocol version
	CodeInternal      Code = 6  // a local failure
	CodeShutdown      Code = 7  // the peer is shutting down
	CodeTooManyStream Code = 8  // stream limit reached
	CodeTimeout       Code = 9  // a timer ran out
	CodeCancelled     Code = 10 // the local end went away
	CodeUnknownTarget Code = 11 // a target kind we do not serve
	CodeAuth          Code = 12 // authentication failed
	CodeBindFailed    Code = 13 // the listening socket could not be made
	CodeUnknownLink   Code = 14 // a join for a link this side does not have
	CodeResumeExpired Code = 15 // the link was not resumed within the resume window
	CodeOverload      Code = 16 // the peer let more replies pile up than this side keeps: it does not read
	CodeUnreachable   Code = 17 // the target's host is unknown (its name does not resolve) or has no route
)

var codeNames = map[Code]string{
	CodeNormal: "normal", CodeProtocol: "protocol error", CodeRefused: "refused",
	CodeDialFailed: "dial failed", CodeFlowControl: "flow control", CodeVersion: "version mismatch",
	CodeInternal: "internal error", CodeShutdown: "shutdown", CodeTooManyStream: "too many streams",
	CodeTimeout: "timeout", CodeCancelled: "cancelled", CodeUnknownTarget: "unknown target kind",
	CodeAuth: "authentication failed", CodeBindFailed: "bind failed",
	CodeUnknownLink: "unknown link", CodeResumeExpired: "link not resumed in time",
	CodeOverload: "overload", CodeUnreachable: "host unreachable",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Reason is a decoded OPEN_FAIL, RST or GOAWAY payload.
type Reason struct {
	Code Code
	Text string
}

func (r Reason) String() string {
	if r.Text == "" {
		return r.Code.String()
	}
	return r.Code.String() + ": " + r.Text
}

// AppendReason appends a reason payload, cutting text to MaxReasonLen on a
// rune boundary. Text that is not UTF-8 (an OS error naming a strange path)
// has its bad bytes replaced, so the peer can always parse it.
func AppendReason(dst []byte, code Code, text string) []byte {
	text = strings.ToValidUTF8(text, "\uFFFD")
	if len(text) > MaxReasonLen {
		text = text[:MaxReasonLen]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, text...)
}

// ParseReason decodes a reason payload.
func ParseReason(p []byte) (Reason, error) {
	if len(p) < 2 || len(p)-2 > MaxReasonLen {
		return Reason{}, fmt.Errorf("%w: reason of %d bytes", ErrMalformed, len(p))
	}
	if !utf8.Valid(p[2:]) {
		return Reason{}, fmt.Errorf("%w: reason text is not UTF-8", ErrMalformed)
	}
	return Reason{Code: Code(binary.BigEndian.Uint16(p)), Text: string(p[2:])}, nil
}

// CREDIT payload: increment u32, at least 1.

// ParseCredit decodes a CREDIT payload.
func ParseCredit(p []byte) (uint32, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("%w: CREDIT of %d bytes", ErrMalformed, len(p))
	}
	n := binary.BigEndian.Uint32(p)
	if n == 0 || n > MaxWindow {
		return 0, fmt.Errorf("%w: CREDIT of %d", ErrMalformed, n)
	}
	return n, nil
}

// PING and PONG payload: 8 opaque bytes (sockmux puts a nanosecond clock
// reading there and measures the round trip from the PONG that echoes it).
const PingLen = 8

// ParsePing decodes a PING or PONG payload.
func ParsePing(p []byte) (uint64, error) {
	if len(p) != PingLen {
		return 0, fmt.Errorf("%w: PING of %d bytes", ErrMalformed, len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

// Frame constructors. Each takes a pooled buffer that the returned frame
// owns.

func newFrame(t Type, stream uint32, payload []byte) *Frame {
	f := &Frame{Type: t, Stream: stream}
	if len(payload) > 0 {
		f.Payload = GetBuffer(len(payload))
		copy(f.Payload.B, payload)
	}
	return f
}

// NewHello builds a HELLO frame.
func NewHello(h *Hello) *Frame { return newFrame(TypeHello, 0, AppendHello(nil, h)) }

// NewOpen builds an OPEN frame.
func NewOpen(stream uint32, kind TargetKind, target string, data []byte) *Frame {
	b := GetBuffer(3 + len(target) + len(data))
	b.B = AppendOpen(b.B[:0], kind, target, data)
	return &Frame{Type: TypeOpen, Stream: stream, Payload: b}
}

// NewReason builds an OPEN_FAIL, RST or GOAWAY frame.
func NewReason(t Type, stream uint32, code Code, text string) *Frame {
	b := GetBuffer(2 + min(len(text), MaxReasonLen))
	b.B = AppendReason(b.B[:0], code, text)
	return &Frame{Type: t, Stream: stream, Payload: b}
}

// NewCredit builds a CREDIT frame.
func NewCredit(stream, n uint32) *Frame {
	b := GetBuffer(4)
	binary.BigEndian.PutUint32(b.B, n)
	return &Frame{Type: TypeCredit, Stream: stream, Payload: b}
}

// NewPing builds a PING (or, with TypePong, a PONG) frame.
func NewPing(t Type, v uint64) *Frame {
	b := GetBuffer(PingLen)
	binary.BigEndian.PutUint64(b.B, v)
	return &Frame{Type: t, Payload: b}
}

// NewEmpty builds a frame with no payload (OPEN_OK, FIN).
func NewEmpty(t Type, stream uint32) *Frame { return &Frame{Type: t, Stream: stream} }
