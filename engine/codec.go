package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Reader decodes frames from a byte stream into pooled buffers. It is used
// by exactly one goroutine, the carrier's reader. Its read buffer is taken
// from a pool only while the stream is busy (readbuf.go).
type Reader struct {
	b   readBuf
	src *source // what b reads from
	hdr [HeaderLen]byte
	// Version is the negotiated version; 0 until the handshake is done,
	// when only HELLO is accepted.
	Version uint8
	// MaxPayload is the largest payload accepted after the handshake.
	MaxPayload uint32
	// Seq allows sequenced frames (FlagSeq): the link agreed CapSeq.
	Seq bool
	// StreamOrder allows FlagAfter: the link agreed CapStreamOrder.
	StreamOrder bool
}

// NewReader returns a Reader on r that reads up to size bytes at once.
func NewReader(r io.Reader, size int) *Reader {
	rd := &Reader{src: &source{r}, MaxPayload: DefaultMaxPayload}
	rd.b.init(rd.src, size)
	return rd
}

// SetSource makes the Reader read from r from now on, keeping what it has
// buffered: a carrier read through a wrapper during its handshake is read
// directly after it. It must not be called while a read is under way.
func (r *Reader) SetSource(src io.Reader) { r.src.r = src }

// source is a Reader's underlying reader, which SetSource replaces.
type source struct{ r io.Reader }

func (s *source) Read(p []byte) (int, error) { return s.r.Read(p) }

// ReadFrame reads one frame. The caller owns the returned frame's payload.
// A clean end between frames is io.EOF; an end inside a frame is
// ErrTruncated; a bad header is an ErrProtocol error naming what was wrong.
func (r *Reader) ReadFrame() (*Frame, error) {
	if err := r.b.readFull(r.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: header cut short", ErrTruncated)
		}
		return nil, err
	}
	h, err := ParseHeader(r.hdr[:], r.Version, r.MaxPayload)
	if err != nil {
		return nil, err
	}
	f := &Frame{Type: h.Type, Flags: h.Flags, Stream: h.Stream}
	if h.Flags&FlagSeq != 0 && r.Version != 0 {
		if !r.Seq {
			return nil, fmt.Errorf("%w: %v carries a sequence number on a link without CapSeq", ErrMalformed, h.Type)
		}
		if err := r.b.readFull(r.hdr[:SeqLen]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: %v sequence number cut short", ErrTruncated, h.Type)
			}
			return nil, err
		}
		if f.Seq = binary.BigEndian.Uint64(r.hdr[:SeqLen]); f.Seq == 0 {
			return nil, fmt.Errorf("%w: %v with sequence number 0", ErrMalformed, h.Type)
		}
		if h.Flags&FlagAfter != 0 {
			if err := r.readAfter(f); err != nil {
				return nil, err
			}
		}
	}
	if h.Length == 0 {
		return f, nil
	}
	f.Payload = GetBuffer(int(h.Length))
	if err := r.readPayload(f.Payload.B); err != nil {
		f.Release()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %v payload of %d bytes cut short", ErrTruncated, h.Type, h.Length)
		}
		return nil, err
	}
	return f, nil
}

// readAfter reads the After of f, a sequenced frame with FlagAfter.
func (r *Reader) readAfter(f *Frame) error {
	if !r.StreamOrder {
		return fmt.Errorf("%w: %v names the frame it follows on a link without CapStreamOrder", ErrMalformed, f.Type)
	}
	if err := r.b.readFull(r.hdr[:AfterLen]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %v after cut short", ErrTruncated, f.Type)
		}
		return err
	}
	f.After = binary.BigEndian.Uint32(r.hdr[:AfterLen])
	if f.After == 0 || uint64(f.After) > f.Seq {
		return fmt.Errorf("%w: %v %d follows frame %d back", ErrMalformed, f.Type, f.Seq, f.After)
	}
	return nil
}

// directReadMin is the least part of a payload, past what is buffered,
// that is read from the source straight into the frame's buffer rather
// than through the read buffer (one copy less).
const directReadMin = 8 << 10

// readPayload fills p, a frame's payload: what is buffered first, then,
// when what is missing is large, straight from the source (the read
// buffer is empty then, so the order holds), else through the buffer.
func (r *Reader) readPayload(p []byte) error {
	n := r.b.read(p) // buffered: no read
	if len(p)-n >= directReadMin {
		_, err := io.ReadFull(r.src, p[n:])
		return err
	}
	return r.b.readFull(p[n:])
}

// Buffered is the number of bytes read from the carrier but not yet
// decoded.
func (r *Reader) Buffered() int { return r.b.buffered() }

// TakeBuffered returns the bytes read from the carrier but not decoded,
// and forgets them: on a keyed carrier, what followed the last handshake
// frame belongs to the record stream.
func (r *Reader) TakeBuffered() []byte {
	b := append([]byte(nil), r.b.bytes()...)
	r.b.discard(len(b))
	r.b.putLarge()
	return b
}

// FrameBuffered says whether ReadFrame would return without reading the
// carrier: a whole frame is buffered, or a header that ReadFrame refuses.
func (r *Reader) FrameBuffered() bool {
	b := r.b.bytes()
	if len(b) < HeaderLen {
		return false
	}
	h, err := ParseHeader(b[:HeaderLen], r.Version, r.MaxPayload)
	if err != nil {
		return true
	}
	need := HeaderLen + int(h.Length)
	if h.Flags&FlagSeq != 0 && r.Version != 0 {
		need += SeqLen
		if h.Flags&FlagAfter != 0 {
			need += AfterLen
		}
	}
	return len(b) >= need
}

// AppendFrame appends f's header (version v) and payload to dst. It is for
// the handshake and tests; the carrier writer sends header and payload with
// one vectored write instead of copying.
func AppendFrame(dst []byte, f *Frame, v uint8) []byte {
	var h [MaxHeaderLen]byte
	n := f.PutHeader(h[:], v)
	return append(append(dst, h[:n]...), f.Bytes()...)
}
