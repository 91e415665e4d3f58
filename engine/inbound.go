package engine

import "fmt"

// What a frame that arrived on an established link asks of it. The Link
// used to decide this while it routed each frame; the decision lives
// here, with no I/O, so it is unit-tested and fuzzed on its own
// (FuzzInbound) and the actor only carries the verdict out.

// InboundKind says where a frame of an established link goes.
type InboundKind uint8

// The kinds of Inbound.
const (
	// InboundOpen is a peer's OPEN: the caller keeps the frame and checks
	// it with Opens.PeerOpen.
	InboundOpen InboundKind = iota + 1
	// InboundStream is a frame for a stream (OPEN_OK, OPEN_FAIL, DATA,
	// FIN, RST): the caller keeps the frame and hands it to the stream,
	// whose state machine decides the rest.
	InboundStream
	// InboundCredit is a CREDIT of Credit bytes for the frame's stream
	// (0: the link).
	InboundCredit
	// InboundPing is a PING to answer with a PONG of Ping.
	InboundPing
	// InboundPong is the answer to our PING of Ping (its send time).
	InboundPong
	// InboundAck is an ACK (CapSeq links only).
	InboundAck
	// InboundBind is a peer's BIND (its -R).
	InboundBind
	// InboundUnbind is a peer's UNBIND of the -R with id Unbind.
	InboundUnbind
	// InboundBindReply is the answer to one of our BINDs.
	InboundBindReply
	// InboundGoAway is the peer going away, with Reason.
	InboundGoAway
)

// Inbound is the verdict on one frame of an established link: its kind
// and what its payload said. For InboundOpen and InboundStream the caller
// keeps the frame; for every other kind (and on an error) everything the
// frame said is in the Inbound, and the caller releases the frame.
type Inbound struct {
	Kind      InboundKind
	Credit    uint32
	Ping      uint64
	Ack       Ack
	Bind      Bind
	Unbind    uint32
	BindReply BindReply
	Reason    Reason
}

// KeepsFrame tells whether the frame goes on to a stream or to Opens
// (and so is not the caller's to release yet).
func (in Inbound) KeepsFrame() bool { return in.Kind == InboundOpen || in.Kind == InboundStream }

// ClassifyInbound decides what f, a frame whose header already passed
// ParseHeader, asks of an established link; seq says whether the link
// agreed CapSeq. An error is the peer breaking the protocol (it matches
// ErrProtocol), and the link ends with it: a stream frame on stream 0, a
// payload that does not parse (an OPEN_OK or FIN that is not empty, a PONG
// that is not the 8 bytes of a PING, §3), an ACK on a link without CapSeq,
// or a frame that belongs to the handshake.
func ClassifyInbound(f *Frame, seq bool) (Inbound, error) {
	p := f.Bytes()
	switch f.Type {
	case TypeOpen:
		return Inbound{Kind: InboundOpen}, nil
	case TypeOpenOK, TypeOpenFail, TypeData, TypeFin, TypeRst:
		if f.Stream == 0 {
			return Inbound{}, fmt.Errorf("%w: %v on stream 0", ErrBadStreamID, f.Type)
		}
		switch f.Type {
		case TypeRst, TypeOpenFail:
			if _, err := ParseReason(p); err != nil {
				return Inbound{}, err
			}
		case TypeOpenOK, TypeFin:
			if len(p) != 0 {
				return Inbound{}, fmt.Errorf("%w: %v with a payload of %d bytes; it has none", ErrMalformed, f.Type, len(p))
			}
		}
		return Inbound{Kind: InboundStream}, nil
	case TypeCredit:
		n, err := ParseCredit(p)
		return Inbound{Kind: InboundCredit, Credit: n}, err
	case TypePing:
		v, err := ParsePing(p)
		return Inbound{Kind: InboundPing, Ping: v}, err
	case TypePong:
		v, err := ParsePing(p)
		if err != nil {
			return Inbound{}, fmt.Errorf("%w (a PONG is the 8 bytes of its PING)", err)
		}
		return Inbound{Kind: InboundPong, Ping: v}, nil
	case TypeAck:
		if !seq {
			return Inbound{}, fmt.Errorf("%w: ACK on a link without CapSeq", ErrStreamState)
		}
		a, err := ParseAck(p)
		return Inbound{Kind: InboundAck, Ack: a}, err
	case TypeBind:
		b, err := ParseBind(p)
		return Inbound{Kind: InboundBind, Bind: b}, err
	case TypeUnbind:
		id, err := ParseUnbind(p)
		return Inbound{Kind: InboundUnbind, Unbind: id}, err
	case TypeBindOK:
		r, err := ParseBindReply(p)
		return Inbound{Kind: InboundBindReply, BindReply: r}, err
	case TypeGoAway:
		r, err := ParseReason(p)
		return Inbound{Kind: InboundGoAway, Reason: r}, err
	default: // HELLO and AUTH, which belong to the handshake
		return Inbound{}, fmt.Errorf("%w: %v after the handshake", ErrStreamState, f.Type)
	}
}
