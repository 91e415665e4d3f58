package wirepeer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sockmux/sockmux/engine"
)

// Writing. Every method writes at once, from the caller's goroutine, and
// blocks while the node does not read.

// Write writes raw bytes (sealed in records on a keyed link).
func (p *Peer) Write(b []byte) error {
	_, err := p.w.Write(b)
	return err
}

// Append appends a frame with this peer's header version to dst. On a
// link that agreed CapSeq, a sequenced type gets the next sequence number
// (so frames appended must be sent, in order).
func (p *Peer) Append(dst []byte, t engine.Type, stream uint32, payload []byte) []byte {
	var seq uint64
	if p.seq && t.Sequenced() {
		p.nextSeq++
		seq = p.nextSeq
	}
	return AppendFrame(dst, engine.Header{Version: p.version, Type: t, Stream: stream}, seq, payload)
}

// Send writes one frame (numbered as Append numbers it).
func (p *Peer) Send(t engine.Type, stream uint32, payload []byte) error {
	return p.Write(p.Append(nil, t, stream, payload))
}

// Open sends an OPEN of kind dial to target with the first bytes.
func (p *Peer) Open(id uint32, target string, first []byte) error {
	return p.Send(engine.TypeOpen, id, OpenPayload(engine.TargetDial, target, first))
}

// Data sends DATA on stream id.
func (p *Peer) Data(id uint32, b []byte) error { return p.Send(engine.TypeData, id, b) }

// Credit sends a CREDIT of n for stream id.
func (p *Peer) Credit(id, n uint32) error { return p.Send(engine.TypeCredit, id, CreditPayload(n)) }

// Rst sends RST on stream id.
func (p *Peer) Rst(id uint32, code engine.Code, text string) error {
	return p.Send(engine.TypeRst, id, ReasonPayload(code, text))
}

// SendPing sends a PING carrying v.
func (p *Peer) SendPing(v uint64) error { return p.Send(engine.TypePing, 0, PingPayload(v)) }

// Reading. Each call sets the read deadline, a guard against a node that
// says nothing, never a measurement.

// maxRead bounds what one frame may allocate: what this peer announced,
// at least a HELLO's worth and at most 16 MiB.
func (p *Peer) maxRead() uint32 {
	n := uint32(engine.DefaultMaxPayload)
	if p.Local != nil {
		n = p.Local.MaxPayload
	}
	return min(max(n, engine.MaxHelloPayload), 16<<20)
}

// ReadFrame reads the node's next frame, waiting up to timeout.
func (p *Peer) ReadFrame(timeout time.Duration) (*Frame, error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(timeout))
	return p.next()
}

func (p *Peer) next() (*Frame, error) {
	f, err := ReadFrame(p.br, p.seq, p.maxRead())
	if err != nil {
		return nil, err
	}
	if f.Type == engine.TypeGoAway {
		p.noteGoAway(f)
	}
	return f, nil
}

// ErrGoAway is a read that met the node's GOAWAY before what it waited for.
var ErrGoAway = errors.New("wirepeer: node sent GOAWAY")

// Expect reads frames, for up to timeout in all, until one for which match
// is true, and returns it with the frames read before it. A GOAWAY that
// match does not take ends the wait with ErrGoAway (naming the reason);
// so does the end of the connection, with its error.
func (p *Peer) Expect(timeout time.Duration, match func(*Frame) bool) (*Frame, []*Frame, error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(timeout))
	var skipped []*Frame
	for {
		f, err := p.next()
		if err != nil {
			return nil, skipped, fmt.Errorf("wirepeer: waiting for a frame: %w", err)
		}
		if match(f) {
			return f, skipped, nil
		}
		if f.Type == engine.TypeGoAway {
			return nil, skipped, fmt.Errorf("%w: %v", ErrGoAway, p.goAway)
		}
		skipped = append(skipped, f)
	}
}

// pings makes every RoundTrip's PING value unique.
var pings atomic.Uint64

// RoundTrip sends a PING and reads until its PONG comes back: the link is
// up and the node reads and answers. It returns the frames read before
// the PONG.
func (p *Peer) RoundTrip(timeout time.Duration) ([]*Frame, error) {
	v := 0x5049_4e47_0000_0000 | pings.Add(1)
	if err := p.SendPing(v); err != nil {
		return nil, fmt.Errorf("wirepeer: sending PING: %w", err)
	}
	_, skipped, err := p.Expect(timeout, func(f *Frame) bool {
		return f.Type == engine.TypePong && string(f.Payload) == string(PingPayload(v))
	})
	return skipped, err
}

// ReadStream reads, for up to timeout in all, the DATA of stream id until
// limit bytes came or the stream ended (FIN or RST, returned as end); the
// other frames are read and dropped. A GOAWAY ends it with ErrGoAway.
func (p *Peer) ReadStream(id uint32, limit int, timeout time.Duration) (data []byte, end *Frame, err error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(timeout))
	for len(data) < limit {
		f, err := p.next()
		if err != nil {
			return data, nil, fmt.Errorf("wirepeer: reading stream %d: %w", id, err)
		}
		switch {
		case f.Type == engine.TypeGoAway:
			return data, nil, fmt.Errorf("%w: %v", ErrGoAway, p.goAway)
		case f.Stream != id:
		case f.Type == engine.TypeData:
			data = append(data, f.Payload...)
		case f.Type == engine.TypeFin, f.Type == engine.TypeRst:
			return data, f, nil
		}
	}
	return data, nil, nil
}

// Closing is how a link ended, as read by Closed.
type Closing struct {
	// GoAway is the last GOAWAY read (nil: none).
	GoAway *engine.Reason
	// AfterGoAway counts the frames that came after the first GOAWAY.
	AfterGoAway int
	// Frames are all the frames read until the end.
	Frames []*Frame
	// Err is how the connection ended: io.EOF, a reset, or a frame cut
	// short.
	Err error
}

// ErrStillOpen is a link that did not end within Closed's timeout.
var ErrStillOpen = errors.New("wirepeer: the link is still open")

// Closed reads everything the node sends until it closes the connection,
// waiting up to timeout in all, and says how it ended. A link still open
// then is ErrStillOpen.
func (p *Peer) Closed(timeout time.Duration) (Closing, error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(timeout))
	var c Closing
	if p.goAway != nil { // met during the handshake
		c.GoAway = p.goAway
	}
	seen := c.GoAway != nil
	for {
		f, err := p.next()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return c, fmt.Errorf("%w after %v (%d frames read, GOAWAY %v)", ErrStillOpen, timeout, len(c.Frames), c.GoAway)
			}
			if !IsEnd(err) {
				return c, fmt.Errorf("wirepeer: reading to the end: %w", err)
			}
			c.Err = err
			return c, nil
		}
		c.Frames = append(c.Frames, f)
		if seen {
			c.AfterGoAway++
		}
		if f.Type == engine.TypeGoAway {
			c.GoAway, seen = p.goAway, true
		}
	}
}

// IsEnd reports whether err is how a read meets a connection the other
// side closed: its end, a reset, or a frame cut short by either.
func IsEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE)
}
