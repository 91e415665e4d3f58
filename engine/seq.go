package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Link sequencing (capability CapSeq). When both HELLOs set CapSeq, a link
// may ride on several carriers at once and outlive them: every frame but
// the per-carrier ones (ACK, PING, PONG, GOAWAY) carries a link sequence
// number after its header, numbered by the sender across all its carriers
// from 1, so the receiver puts frames from different carriers back in order
// and drops the copies of frames sent again.
//
// A sequenced frame on the wire:
//
//	 0                                      12                              20
//	+--------------------------------------+-------------------------------+---------+
//	| header, flags bit 0 (FlagSeq) set    | sequence number u64           | payload |
//	+--------------------------------------+-------------------------------+---------+
//
// ACK payload, 16 bytes:
//
//	 0                               8                              16
//	+-------------------------------+-------------------------------+
//	| received: highest seq in order| carrier bytes                 |
//	+-------------------------------+-------------------------------+
//
// received lets the sender forget (and stop resending) every frame up to
// it; carrier bytes is how many bytes of sequenced frames (header, sequence
// number and payload) arrived on the carrier the ACK travels on, since that
// carrier's handshake, which tells the sender how much of what it put on
// that carrier is still in the network.
//
// HELLO extensions of a CapSeq peer:
//
//	ExtLinkID   16 bytes  the link this carrier belongs to (chosen by the dialer)
//	ExtJoin     empty     this carrier joins the link named by ExtLinkID
//	ExtReceived u64       the dialer's received, for a join (it resumes from there)
//	ExtReorder  u32       bytes this side holds out of order; the peer keeps its
//	                      unacknowledged bytes below it
//
// A join is authenticated like a first carrier. The accepter answers an
// accepted join with an ACK as the carrier's first frame (its received), or
// refuses it with GOAWAY (CodeUnknownLink, CodeAuth) and closes.
const (
	// CapSeq is the capability bit of a peer that numbers its frames and
	// can stripe a link over several carriers.
	CapSeq uint32 = 1 << 1
	// FlagSeq is the header flag of a frame followed by a sequence number.
	FlagSeq uint16 = 1 << 0
	// SeqLen is the length of a sequence number.
	SeqLen = 8
	// AckLen is the length of an ACK payload.
	AckLen = 16
	// LinkIDLen is the length of a link id.
	LinkIDLen = 16

	// ExtLinkID names the link, ExtJoin asks to join it, ExtReceived is
	// the joining dialer's received and ExtReorder the sender's reorder
	// limit.
	ExtLinkID   uint8 = 3
	ExtJoin     uint8 = 4
	ExtReceived uint8 = 5
	ExtReorder  uint8 = 6

	// DefaultReorder is the reorder limit a peer announces unless told
	// otherwise: 16 MiB.
	DefaultReorder = 16 << 20
	// minReorder is the least reorder limit a peer may announce: it must
	// hold at least a few of the largest frames.
	minReorder = 1 << 20
)

// ErrUnknownLink is a join naming a link the accepter does not have: it
// never existed, or it was not resumed within the resume window.
var ErrUnknownLink = errors.New("unknown link")

// Sequenced reports whether frames of type t carry a sequence number on a
// CapSeq link. ACK, PING and PONG describe the carrier they travel on, and
// GOAWAY is said on each carrier; every other frame is the link's.
func (t Type) Sequenced() bool {
	switch t {
	case TypeAck, TypePing, TypePong, TypeGoAway, TypeHello, TypeAuth:
		return false
	}
	return true
}

// Ack is the decoded ACK payload.
type Ack struct {
	Received     uint64
	CarrierBytes uint64
}

// AppendAck appends an ACK payload to dst.
func AppendAck(dst []byte, a Ack) []byte {
	dst = binary.BigEndian.AppendUint64(dst, a.Received)
	return binary.BigEndian.AppendUint64(dst, a.CarrierBytes)
}

// ParseAck decodes an ACK payload.
func ParseAck(p []byte) (Ack, error) {
	if len(p) != AckLen {
		return Ack{}, fmt.Errorf("%w: ACK of %d bytes, want %d", ErrMalformed, len(p), AckLen)
	}
	return Ack{Received: binary.BigEndian.Uint64(p), CarrierBytes: binary.BigEndian.Uint64(p[8:])}, nil
}

// NewAck builds an ACK frame.
func NewAck(a Ack) *Frame {
	b := GetBuffer(AckLen)
	b.B = AppendAck(b.B[:0], a)
	return &Frame{Type: TypeAck, Payload: b}
}

// LinkID names a link across its carriers.
type LinkID [LinkIDLen]byte

func (id LinkID) String() string { return fmt.Sprintf("%x", id[:4]) }

// LinkHello is what a CapSeq HELLO says about the link.
type LinkHello struct {
	ID       LinkID
	Join     bool
	Received uint64 // for a join
	Reorder  uint32
}

// SetLinkHello adds the link extensions to h and sets CapSeq.
func SetLinkHello(h *Hello, l LinkHello) {
	h.Capabilities |= CapSeq
	if h.Extensions == nil {
		h.Extensions = make(map[uint8][]byte)
	}
	h.Extensions[ExtLinkID] = append([]byte(nil), l.ID[:]...)
	h.Extensions[ExtReorder] = binary.BigEndian.AppendUint32(nil, l.Reorder)
	if l.Join {
		h.Extensions[ExtJoin] = []byte{}
		h.Extensions[ExtReceived] = binary.BigEndian.AppendUint64(nil, l.Received)
	}
}

// ParseLinkHello reads the link extensions of a peer's CapSeq HELLO.
func ParseLinkHello(h *Hello) (LinkHello, error) {
	var l LinkHello
	if h.Capabilities&CapSeq == 0 {
		return l, fmt.Errorf("%w: HELLO without CapSeq has no link", ErrMalformed)
	}
	id, ok := h.Extensions[ExtLinkID]
	if !ok || len(id) != LinkIDLen {
		return l, fmt.Errorf("%w: CapSeq HELLO needs a %d-byte link id (extension %d)", ErrMalformed, LinkIDLen, ExtLinkID)
	}
	copy(l.ID[:], id)
	r, ok := h.Extensions[ExtReorder]
	if !ok || len(r) != 4 {
		return l, fmt.Errorf("%w: CapSeq HELLO needs a reorder limit (extension %d)", ErrMalformed, ExtReorder)
	}
	if l.Reorder = binary.BigEndian.Uint32(r); l.Reorder < minReorder {
		return l, fmt.Errorf("%w: reorder limit %d below %d", ErrMalformed, l.Reorder, minReorder)
	}
	if j, ok := h.Extensions[ExtJoin]; ok {
		if len(j) != 0 {
			return l, fmt.Errorf("%w: join extension of %d bytes", ErrMalformed, len(j))
		}
		l.Join = true
		rv, ok := h.Extensions[ExtReceived]
		if !ok || len(rv) != 8 {
			return l, fmt.Errorf("%w: join without its received (extension %d)", ErrMalformed, ExtReceived)
		}
		l.Received = binary.BigEndian.Uint64(rv)
	}
	return l, nil
}
