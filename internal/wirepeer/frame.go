package wirepeer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/sockmux/sockmux/engine"
)

// Frame is one frame as it came off the wire: the header as it was sent
// (no check made of it), the sequence number when the header had FlagSeq
// on a sequenced link (and After, the frame it follows, when it also had
// FlagAfter), and the payload in a plain slice of its own (never
// a pooled buffer, so a test peer cannot upset the node's buffer counts).
type Frame struct {
	engine.Header
	Seq     uint64
	After   uint32
	Payload []byte
}

// String names the frame for test failure messages.
func (f *Frame) String() string {
	s := fmt.Sprintf("%v stream=%d len=%d", f.Type, f.Stream, len(f.Payload))
	switch f.Type {
	case engine.TypeGoAway, engine.TypeRst, engine.TypeOpenFail:
		if r, err := engine.ParseReason(f.Payload); err == nil {
			s += " (" + r.String() + ")"
		}
	}
	return s
}

// Reason decodes the payload of an OPEN_FAIL, RST or GOAWAY.
func (f *Frame) Reason() (engine.Reason, error) { return engine.ParseReason(f.Payload) }

// ErrTooLarge is a frame whose length field is above what the reader was
// told to accept; nothing was allocated for it.
var ErrTooLarge = errors.New("wirepeer: frame length above the limit")

// ReadFrame reads one frame from r. seq says the link agreed CapSeq, so a
// header with FlagSeq is followed by an 8-byte sequence number, and then,
// with FlagAfter too, the 4-byte After. A length
// above max is ErrTooLarge, found before any payload is allocated. A clean
// end before a header is io.EOF; an end inside a frame is
// io.ErrUnexpectedEOF. Nothing else is checked: version, type, flags and
// stream id are returned as they were sent, for the test to judge.
func ReadFrame(r io.Reader, seq bool, max uint32) (*Frame, error) {
	var hdr [engine.HeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	f := &Frame{Header: engine.Header{
		Version: hdr[0],
		Type:    engine.Type(hdr[1]),
		Flags:   binary.BigEndian.Uint16(hdr[2:]),
		Stream:  binary.BigEndian.Uint32(hdr[4:]),
		Length:  binary.BigEndian.Uint32(hdr[8:]),
	}}
	if seq && f.Flags&engine.FlagSeq != 0 {
		var s [engine.SeqLen]byte
		if _, err := io.ReadFull(r, s[:]); err != nil {
			return nil, noEOF(err)
		}
		f.Seq = binary.BigEndian.Uint64(s[:])
		if f.Flags&engine.FlagAfter != 0 { // stream order: the frame it follows
			var a [engine.AfterLen]byte
			if _, err := io.ReadFull(r, a[:]); err != nil {
				return nil, noEOF(err)
			}
			f.After = binary.BigEndian.Uint32(a[:])
		}
	}
	if f.Length > max {
		return nil, fmt.Errorf("%w: %v of %d bytes (limit %d)", ErrTooLarge, f.Type, f.Length, max)
	}
	if f.Length > 0 {
		f.Payload = make([]byte, f.Length)
		if _, err := io.ReadFull(r, f.Payload); err != nil {
			return nil, noEOF(err)
		}
	}
	return f, nil
}

// noEOF turns the end of the input inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendFrame appends a frame's wire bytes to dst: the header with the
// given fields and, when seq is not 0, FlagSeq and the sequence number.
// Length is the payload's, whatever h.Length says; to lie about a length,
// write a header with engine.PutHeader and send it raw.
func AppendFrame(dst []byte, h engine.Header, seq uint64, payload []byte) []byte {
	h.Length = uint32(len(payload))
	if seq != 0 {
		h.Flags |= engine.FlagSeq
	}
	var b [engine.MaxHeaderLen]byte
	engine.PutHeader(b[:], h)
	n := engine.HeaderLen
	if seq != 0 {
		binary.BigEndian.PutUint64(b[engine.HeaderLen:], seq)
		n = engine.HeaderLen + engine.SeqLen
	}
	return append(append(dst, b[:n]...), payload...)
}

// Header returns a header of the given type and stream with version v and
// the given length: for raw frames whose length field lies.
func Header(v uint8, t engine.Type, stream, length uint32) []byte {
	b := make([]byte, engine.HeaderLen)
	engine.PutHeader(b, engine.Header{Version: v, Type: t, Stream: stream, Length: length})
	return b
}

// Payload encoders for the frames a test sends most, on top of engine's.

// OpenPayload is an OPEN payload of kind dial to target with first bytes.
func OpenPayload(kind engine.TargetKind, target string, first []byte) []byte {
	return engine.AppendOpen(nil, kind, target, first)
}

// ReasonPayload is an OPEN_FAIL, RST or GOAWAY payload.
func ReasonPayload(code engine.Code, text string) []byte { return engine.AppendReason(nil, code, text) }

// CreditPayload is a CREDIT payload of increment n (any value, 0 and
// past 2^30 included).
func CreditPayload(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// PingPayload is a PING or PONG payload carrying v.
func PingPayload(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
