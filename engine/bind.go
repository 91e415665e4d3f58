package engine

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// BIND payload (-R: the sender asks the receiver to listen for it):
//
//	 0                               4       5               7
//	+-------------------------------+-------+---------------+---------------------+
//	|          forward id           | proto |   addr len    | addr "host:port"    |
//	+-------------------------------+-------+---------------+---------------------+
//	| pool len u8 | pool name  (optional: only to a peer that offered CapPool)      |
//	+-----------------------------------------------------------------------------+
//
// BIND_REPLY payload:
//
//	 0                               4               6
//	+-------------------------------+---------------+------------------------------+
//	|          forward id           |     code      | text: the bound address      |
//	|                               |               | (code 0) or the reason       |
//	+-------------------------------+---------------+------------------------------+
//
// The receiver of a BIND carries each connection it accepts back with an
// OPEN of kind TargetForward whose target is the forward id in decimal; the
// sender of the BIND alone knows where it leads.
//
// A BIND that names a pool asks to share the listening socket with the
// other links that asked the same receiver for the same address under the
// same pool name: the receiver spreads the connections it accepts there
// over them. The pool field goes only to a peer whose HELLO set CapPool, as
// a receiver from before pools takes any byte past the address for a
// malformed BIND.
const (
	// CapPool is the capability bit of a peer that understands a BIND's
	// pool name (pooled reverse forwards).
	CapPool uint32 = 1 << 5
	// MaxPoolName bounds a pool name's length.
	MaxPoolName = 64
)

// Bind is a decoded BIND payload.
type Bind struct {
	ID    uint32
	Proto uint8 // 0 TCP, 1 UDP
	Addr  string
	Pool  string // "": not pooled
}

// ValidPoolName reports whether name may name a pool: 1 to MaxPoolName
// letters, digits, '-', '_' or '.'.
func ValidPoolName(name string) bool {
	if name == "" || len(name) > MaxPoolName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// AppendBind appends a BIND payload; b.Pool is written when set, so the
// caller leaves it empty for a peer without CapPool.
func AppendBind(dst []byte, b Bind) []byte {
	dst = binary.BigEndian.AppendUint32(dst, b.ID)
	dst = append(dst, b.Proto)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b.Addr)))
	dst = append(dst, b.Addr...)
	if b.Pool != "" {
		dst = append(dst, byte(len(b.Pool)))
		dst = append(dst, b.Pool...)
	}
	return dst
}

// ParseBind decodes a BIND payload.
func ParseBind(p []byte) (Bind, error) {
	if len(p) < 7 {
		return Bind{}, fmt.Errorf("%w: BIND of %d bytes", ErrMalformed, len(p))
	}
	n := int(binary.BigEndian.Uint16(p[5:]))
	if n == 0 || n > MaxTargetLen || len(p) < 7+n || !utf8.Valid(p[7:7+n]) {
		return Bind{}, fmt.Errorf("%w: BIND address of %d bytes in a %d-byte payload", ErrMalformed, n, len(p))
	}
	b := Bind{ID: binary.BigEndian.Uint32(p), Proto: p[4], Addr: string(p[7 : 7+n])}
	if rest := p[7+n:]; len(rest) > 0 {
		if m := int(rest[0]); len(rest) != 1+m || !ValidPoolName(string(rest[1:])) {
			return Bind{}, fmt.Errorf("%w: BIND pool name of %d bytes in %d", ErrMalformed, m, len(rest)-1)
		}
		b.Pool = string(rest[1:])
	}
	return b, nil
}

// BindReply is a decoded BIND_REPLY payload.
type BindReply struct {
	ID   uint32
	Code Code
	Text string
}

// AppendBindReply appends a BIND_REPLY payload.
func AppendBindReply(dst []byte, r BindReply) []byte {
	dst = binary.BigEndian.AppendUint32(dst, r.ID)
	return AppendReason(dst, r.Code, r.Text)
}

// ParseBindReply decodes a BIND_REPLY payload.
func ParseBindReply(p []byte) (BindReply, error) {
	if len(p) < 6 {
		return BindReply{}, fmt.Errorf("%w: BIND_REPLY of %d bytes", ErrMalformed, len(p))
	}
	r, err := ParseReason(p[4:])
	if err != nil {
		return BindReply{}, err
	}
	return BindReply{ID: binary.BigEndian.Uint32(p), Code: r.Code, Text: r.Text}, nil
}

// NewBind builds a BIND frame.
func NewBind(b Bind) *Frame { return newFrame(TypeBind, 0, AppendBind(nil, b)) }

// NewBindReply builds a BIND_REPLY frame.
func NewBindReply(r BindReply) *Frame { return newFrame(TypeBindOK, 0, AppendBindReply(nil, r)) }
