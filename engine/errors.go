package engine

import "errors"

// Sentinel errors. Callers wrap them with %w and test them with errors.Is.
var (
	// ErrProtocol is the umbrella for every violation of the wire protocol
	// by the peer; the more specific errors below also match it.
	ErrProtocol = errors.New("protocol error")
	// ErrUnknownType is a frame type this version does not define.
	ErrUnknownType = protoErr("unknown frame type")
	// ErrFrameTooLarge is a length field above the negotiated limit.
	ErrFrameTooLarge = protoErr("frame too large")
	// ErrTruncated is a frame cut short by the end of the carrier.
	ErrTruncated = protoErr("truncated frame")
	// ErrMalformed is a payload that does not parse.
	ErrMalformed = protoErr("malformed payload")
	// ErrBadMagic is a first frame that is not a sockmux HELLO.
	ErrBadMagic = protoErr("not a sockmux peer (bad magic)")
	// ErrVersion is a peer that speaks no version we speak.
	ErrVersion = protoErr("unsupported protocol version")
	// ErrBadStreamID is an OPEN with an id of the wrong parity or reused.
	ErrBadStreamID = protoErr("bad stream id")
	// ErrFlowControl is DATA beyond the credit we granted.
	ErrFlowControl = protoErr("flow control violation")
	// ErrStreamState is a frame the stream's state does not allow.
	ErrStreamState = protoErr("frame not allowed in stream state")

	// ErrStreamClosed is a frame for a stream that already ended; the
	// caller drops it (it may have crossed a RST on the wire).
	ErrStreamClosed = errors.New("stream closed")

	// ErrPeerRefused is a handshake the peer ended with a GOAWAY; the error
	// also matches what the peer's code means (ErrAuth, ErrVersion,
	// ErrUnknownLink) and carries its reason.
	ErrPeerRefused = errors.New("peer refused the link")
	// ErrIDsExhausted is a link that has used every stream id of its side.
	ErrIDsExhausted = errors.New("stream ids exhausted on this link")
	// ErrStreamLimit is an open of ours refused by the stream limit.
	ErrStreamLimit = errors.New("stream limit reached")
)

// protoError is a specific protocol error that also matches ErrProtocol.
type protoError struct{ msg string }

func protoErr(msg string) error { return &protoError{msg} }

func (e *protoError) Error() string        { return e.msg }
func (e *protoError) Is(target error) bool { return target == ErrProtocol }

// ErrIntegrity is a record of a keyed carrier that does not open: altered,
// replayed, reordered, cut, or sealed with another key. It matches
// ErrProtocol, so the side that meets it tells the peer in a GOAWAY
// (sealed: the direction it sends in is intact) and ends the link.
var ErrIntegrity = protoErr("integrity check failed")

// ErrShortKey is a pre-shared key shorter than MinKeyLen, refused at
// startup.
var ErrShortKey = errors.New("pre-shared key too short")
