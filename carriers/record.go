package carriers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// RecordSealer seals plaintext into the records of a keyed carrier
// (engine.RecordSealer).
type RecordSealer interface {
	Seal(dst, p []byte) ([]byte, error)
}

// RecordOpener opens the records at the start of src, in order
// (engine.RecordOpener): it appends their plaintext to dst, no more than
// limit bytes (negative: no limit), and says how many bytes of src it
// used; a record that does not open is an error, and stays one.
type RecordOpener interface {
	Decode(dst, src []byte, limit int) ([]byte, int, error)
}

// sealedReadBuffer is what a sealed carrier reads at once: room for a few
// records of the largest size.
const sealedReadBuffer = 256 << 10

// sealedWriteChunk bounds the plaintext sealed per write, so a big batch
// does not need a sealed copy of its whole size.
const sealedWriteChunk = 1 << 20

// Sealed wraps conn so that what is written is sealed into records and
// what is read is opened from them. buffered is what was read from conn
// already past the handshake (it belongs to the record stream). Deadlines,
// addresses and Close are conn's. A record that does not open fails the
// read, and every read after it; no byte of it is returned.
func Sealed(conn net.Conn, buffered []byte, s RecordSealer, o RecordOpener) net.Conn {
	c := &sealedConn{Conn: conn, s: s, o: o, raw: make([]byte, 0, max(sealedReadBuffer, 2*len(buffered)))}
	c.raw = append(c.raw, buffered...)
	return c
}

type sealedConn struct {
	net.Conn
	s RecordSealer
	o RecordOpener

	rmu   sync.Mutex
	raw   []byte // read from conn, not opened yet
	plain []byte // opened, not returned yet: plain[pos:]
	pos   int
	rerr  error // a record that did not open: sticky

	wmu  sync.Mutex
	wbuf []byte
	werr error // a write cut inside a record: sticky
}

// Read returns opened bytes, reading and opening records as needed.
func (c *sealedConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for c.pos == len(c.plain) {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(c.raw) > 0 {
			// Straight into p when the next records fit: no copy.
			out, used, err := c.o.Decode(p[:0], c.raw, len(p))
			c.raw = c.raw[:copy(c.raw, c.raw[used:])]
			if err != nil {
				c.rerr = err
			}
			if len(out) > 0 {
				return len(out), nil
			}
			if err != nil {
				continue
			}
		}
		plain, used, err := c.o.Decode(c.plain[:0], c.raw, -1)
		c.plain, c.pos = plain, 0
		c.raw = c.raw[:copy(c.raw, c.raw[used:])]
		if err != nil {
			c.rerr = err
			continue // what opened before the bad record is returned first
		}
		if len(c.plain) > 0 {
			break
		}
		if len(c.raw) == cap(c.raw) { // cannot happen: a record fits twice
			c.rerr = errors.New("sealed carrier: record larger than the read buffer")
			continue
		}
		n, err := c.Conn.Read(c.raw[len(c.raw):cap(c.raw)])
		c.raw = c.raw[:len(c.raw)+n]
		if n > 0 {
			continue
		}
		if err == io.EOF && len(c.raw) > 0 {
			err = fmt.Errorf("%w: the carrier ended inside a record", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, err // a deadline, or the end: not sticky
		}
	}
	n := copy(p, c.plain[c.pos:])
	c.pos += n
	return n, nil
}

// Write seals p into records and writes them.
func (c *sealedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	done := 0
	for done < len(p) {
		chunk := p[done:min(len(p), done+sealedWriteChunk)]
		var err error
		if c.wbuf, err = c.s.Seal(c.wbuf[:0], chunk); err != nil {
			c.werr = err
			return done, err
		}
		if _, err := c.Conn.Write(c.wbuf); err != nil {
			c.werr = fmt.Errorf("sealed carrier: a record cut by a failed write: %w", err)
			return done, err
		}
		done += len(chunk)
	}
	if cap(c.wbuf) > 2*sealedWriteChunk {
		c.wbuf = nil
	}
	return done, nil
}
