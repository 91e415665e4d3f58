package engine

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// Frame header, 12 bytes, big-endian:
//
//	 0       1       2               4                               8                              12
//	+-------+-------+---------------+-------------------------------+-------------------------------+
//	|version| type  |     flags     |           stream id           |        payload length         |
//	+-------+-------+---------------+-------------------------------+-------------------------------+
//
// version is the negotiated protocol version (any value on HELLO), stream
// id 0 is the link itself, and length counts the payload bytes that follow
// the header (and the sequence number, when there is one). Of the flags only
// bit 0, FlagSeq, has a meaning: an 8-byte link sequence number follows the
// header (see seq.go; only on links that agreed CapSeq). Other bits are sent
// as 0 and ignored on receipt.
const (
	// HeaderLen is the size of a frame header.
	HeaderLen = 12
	// Version is the protocol version this build speaks (and the highest).
	Version = 1
	// MinVersion is the lowest protocol version this build speaks.
	MinVersion = 1
	// DefaultMaxPayload is the largest payload a peer accepts unless its
	// HELLO says otherwise: 64 KiB.
	DefaultMaxPayload = 64 << 10
	// MaxHelloPayload bounds HELLO, which is read before any limit is agreed.
	MaxHelloPayload = 4096
	// MaxReasonLen bounds the text of OPEN_FAIL, RST and GOAWAY.
	MaxReasonLen = 1024
	// MaxTargetLen bounds the target named by OPEN.
	MaxTargetLen = 1024
)

// Type is a frame type.
type Type uint8

// Frame types. The payload layout of each is in payload.go.
const (
	TypeHello    Type = 0x01 // link: versions, role, capabilities, limits
	TypeOpen     Type = 0x02 // stream: target and optional first bytes
	TypeOpenOK   Type = 0x03 // stream: empty
	TypeOpenFail Type = 0x04 // stream: code u16, reason
	TypeData     Type = 0x05 // stream: bytes
	TypeCredit   Type = 0x06 // stream: increment u32
	TypeFin      Type = 0x07 // stream: empty; sender will send no more DATA
	TypeRst      Type = 0x08 // stream: code u16, reason
	TypePing     Type = 0x09 // link: 8 opaque bytes
	TypePong     Type = 0x0A // link: the 8 bytes of the PING
	TypeGoAway   Type = 0x0B // link: code u16, reason
	TypeAuth     Type = 0x0C // link, handshake only: a Noise message proving the key
	TypeBind     Type = 0x0D // link: please listen for me (-R)
	TypeBindOK   Type = 0x0E // link: the answer to a BIND
	TypeAck      Type = 0x0F // link, CapSeq only: what arrived (seq.go)
	TypeUnbind   Type = 0x10 // link, CapUnbind only: stop listening for my -R (unbind.go)
	typeMax           = TypeUnbind
)

var typeNames = [...]string{
	TypeHello: "HELLO", TypeOpen: "OPEN", TypeOpenOK: "OPEN_OK", TypeOpenFail: "OPEN_FAIL",
	TypeData: "DATA", TypeCredit: "CREDIT", TypeFin: "FIN", TypeRst: "RST",
	TypePing: "PING", TypePong: "PONG", TypeGoAway: "GOAWAY", TypeAuth: "AUTH",
	TypeBind: "BIND", TypeBindOK: "BIND_REPLY", TypeAck: "ACK", TypeUnbind: "UNBIND",
}

func (t Type) String() string {
	if t >= 1 && t <= typeMax {
		return typeNames[t]
	}
	return fmt.Sprintf("TYPE(0x%02x)", uint8(t))
}

// Valid reports whether t is a frame type of this version.
func (t Type) Valid() bool { return t >= 1 && t <= typeMax }

// Control reports whether frames of type t are control frames, which the
// scheduler sends before any stream's DATA. DATA and FIN are ordered with
// their stream's bytes and so are not control frames.
func (t Type) Control() bool { return t != TypeData && t != TypeFin }

// Header is a decoded frame header.
type Header struct {
	Version uint8
	Type    Type
	Flags   uint16
	Stream  uint32
	Length  uint32
}

// PutHeader writes h into b, which must hold HeaderLen bytes.
func PutHeader(b []byte, h Header) {
	_ = b[HeaderLen-1]
	b[0] = h.Version
	b[1] = uint8(h.Type)
	binary.BigEndian.PutUint16(b[2:], h.Flags)
	binary.BigEndian.PutUint32(b[4:], h.Stream)
	binary.BigEndian.PutUint32(b[8:], h.Length)
}

// ParseHeader decodes and checks a header. version is the negotiated
// version, or 0 during the handshake, when only a HELLO of any version is
// accepted. maxPayload is the largest length this side accepts.
func ParseHeader(b []byte, version uint8, maxPayload uint32) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: header of %d bytes", ErrTruncated, len(b))
	}
	h := Header{
		Version: b[0],
		Type:    Type(b[1]),
		Flags:   binary.BigEndian.Uint16(b[2:]),
		Stream:  binary.BigEndian.Uint32(b[4:]),
		Length:  binary.BigEndian.Uint32(b[8:]),
	}
	if version == 0 {
		if h.Type != TypeHello {
			return h, fmt.Errorf("%w: first frame is %v, want HELLO", ErrBadMagic, h.Type)
		}
		if h.Length > MaxHelloPayload {
			return h, fmt.Errorf("%w: HELLO of %d bytes (limit %d)", ErrFrameTooLarge, h.Length, MaxHelloPayload)
		}
		return h, nil
	}
	if h.Version != version {
		return h, fmt.Errorf("%w: frame version %d on a version %d link", ErrVersion, h.Version, version)
	}
	if !h.Type.Valid() {
		return h, fmt.Errorf("%w 0x%02x", ErrUnknownType, uint8(h.Type))
	}
	if h.Type == TypeHello {
		return h, fmt.Errorf("%w: HELLO after the handshake", ErrStreamState)
	}
	if h.Length > maxPayload {
		return h, fmt.Errorf("%w: %v of %d bytes (limit %d)", ErrFrameTooLarge, h.Type, h.Length, maxPayload)
	}
	return h, nil
}

// Frame is one frame with its payload in a pooled buffer. Whoever holds a
// Frame owns its Payload and must hand it on or call Release. A frame kept
// for resending is held by several owners at once (the sender's unacked
// list and the carrier writers it was handed to): each extra owner is
// counted by Retain and releases once, and the last one returns the
// payload.
type Frame struct {
	Type   Type
	Flags  uint16
	Stream uint32
	// Seq is the link sequence number (0 for none): set by the sender's
	// scheduler on a CapSeq link, and by the Reader from the wire.
	Seq uint64
	// After, with stream order (order.go), is how far back the frame this
	// one must be delivered after is; 0 is link order.
	After   uint32
	Payload *Buffer      // nil for an empty payload
	refs    atomic.Int32 // owners beyond the first
}

// Len is the payload length.
func (f *Frame) Len() int {
	if f.Payload == nil {
		return 0
	}
	return len(f.Payload.B)
}

// Bytes is the payload (nil when empty).
func (f *Frame) Bytes() []byte {
	if f.Payload == nil {
		return nil
	}
	return f.Payload.B
}

// Retain adds an owner: one more Release is needed before the payload
// goes back to the pool.
func (f *Frame) Retain() { f.refs.Add(1) }

// Release gives up one owner's hold; the last owner returns the payload to
// the pool. For a frame with one owner it is safe to call twice.
func (f *Frame) Release() {
	if f.refs.Load() > 0 && f.refs.Add(-1) >= 0 {
		return // another owner still holds it
	}
	if f.Payload != nil {
		PutBuffer(f.Payload)
		f.Payload = nil
	}
}

// WireLen is the number of bytes the frame takes on the wire.
func (f *Frame) WireLen() int { return f.headerLen() + f.Len() }

func (f *Frame) headerLen() int {
	switch {
	case f.Seq == 0:
		return HeaderLen
	case f.After == 0:
		return HeaderLen + SeqLen
	}
	return MaxHeaderLen
}

// MaxHeaderLen is the most header bytes a frame has: the header, its
// sequence number and its After.
const MaxHeaderLen = HeaderLen + SeqLen + AfterLen

// PutHeader writes the frame's header, with version v, into b and returns
// its length: HeaderLen, HeaderLen+SeqLen for a sequenced frame, or
// MaxHeaderLen for one with an After. b must hold MaxHeaderLen bytes.
func (f *Frame) PutHeader(b []byte, v uint8) int {
	h := Header{Version: v, Type: f.Type, Flags: f.Flags, Stream: f.Stream, Length: uint32(f.Len())}
	if f.Seq == 0 {
		PutHeader(b, h)
		return HeaderLen
	}
	// The layout flags are this frame's own, whatever a frame read from
	// the wire came with.
	h.Flags = h.Flags&^FlagAfter | FlagSeq
	if f.After != 0 {
		h.Flags |= FlagAfter
	}
	PutHeader(b, h)
	binary.BigEndian.PutUint64(b[HeaderLen:], f.Seq)
	if f.After == 0 {
		return HeaderLen + SeqLen
	}
	binary.BigEndian.PutUint32(b[HeaderLen+SeqLen:], f.After)
	return MaxHeaderLen
}

func (f *Frame) String() string {
	return fmt.Sprintf("%v stream=%d len=%d", f.Type, f.Stream, f.Len())
}
