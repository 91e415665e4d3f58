package carriers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// RecordSealer seals plaintext into the records of a keyed carrier
// (engine.RecordSealer).
type RecordSealer interface {
	Seal(dst, p []byte) ([]byte, error)
	// SealBuffers seals the concatenation of bufs, or its first max
	// bytes, gathering each record's plaintext into dst and sealing it
	// there; it says how much plaintext it took.
	SealBuffers(dst []byte, bufs [][]byte, max int) ([]byte, int, error)
}

// RecordOpener opens the records at the start of src, in order
// (engine.RecordOpener): it appends their plaintext to dst, no more than
// limit bytes (negative: no limit), and says how many bytes of src it
// used; a record that does not open is an error, and stays one.
type RecordOpener interface {
	Decode(dst, src []byte, limit int) ([]byte, int, error)
}

// sealedReadBuffer is what a busy sealed carrier reads at once: room for
// a few records of the largest size.
const sealedReadBuffer = 256 << 10

// A sealed carrier's buffers (the records read, the plaintext opened and
// not yet returned, the records sealed for a write) are large only while
// the carrier is busy, and come from sealedBufs: an idle keyed carrier (a
// hub holds thousands) reads its next records into a small array of its
// own and holds no large buffer while it waits, as engine.Reader does.
// The read side's go back to the pool once everything in them is used
// and the last read was short (it brought less than the small array
// holds); the sealed records' buffer, at the first small write after
// large ones.
const (
	// sealedSmallRead is the small array: a quiet carrier's records (a
	// PING's is 42 bytes) in one read.
	sealedSmallRead = 512
	// sealedSmallWrite is the most plaintext a small write has, and the
	// largest records buffer one keeps: an idle link's PINGs and ACKs fit.
	sealedSmallWrite = 4 << 10
)

// sealedBufs holds the large buffers (cap sealedReadBuffer or more) of
// the sealed conns that have none.
var sealedBufs sync.Pool // *[]byte

// getSealedBuf takes a large buffer from the pool, empty. Its room beyond
// sealedReadBuffer holds the records' overhead when a whole write chunk
// is sealed into it.
func getSealedBuf() []byte {
	if p, _ := sealedBufs.Get().(*[]byte); p != nil && cap(*p) >= sealedReadBuffer {
		return (*p)[:0]
	}
	return make([]byte, 0, sealedReadBuffer+16<<10)
}

// putSealedBuf gives b back to the pool if it is a large one.
func putSealedBuf(b []byte) {
	if cap(b) >= sealedReadBuffer {
		sealedBufs.Put(&b)
	}
}

// maxSealedRecord is the longest record on the wire: its length and the
// most its u16 length can say (engine.MaxRecordLen).
const maxSealedRecord = 2 + 1<<16 - 1

// sealedWriteChunk bounds the plaintext sealed per write: a few
// full-size records, one syscall, and a sealed buffer small enough to
// stay in the CPU's cache between the sealing and the write that copies
// it into the kernel.
const sealedWriteChunk = 256 << 10 // four records of the largest size

// Sealed wraps conn so that what is written is sealed into records and
// what is read is opened from them. buffered is what was read from conn
// already past the handshake (it belongs to the record stream). Deadlines,
// addresses and Close are conn's. A record that does not open fails the
// read, and every read after it; no byte of it is returned.
func Sealed(conn net.Conn, buffered []byte, s RecordSealer, o RecordOpener) net.Conn {
	c := &sealedConn{Conn: conn, s: s, o: o, src: conn}
	c.raw, c.inSmall = c.small[:0], true
	if len(buffered) > len(c.small) {
		c.raw, c.inSmall = make([]byte, 0, max(sealedReadBuffer, 2*len(buffered))), false
	}
	c.raw = append(c.raw, buffered...)
	return c
}

type sealedConn struct {
	net.Conn
	s RecordSealer
	o RecordOpener

	rmu     sync.Mutex
	raw     []byte // read from conn; raw[rpos:] is not opened yet
	rpos    int
	small   [sealedSmallRead]byte // raw while the carrier is quiet
	inSmall bool                  // raw is small's
	busy    bool                  // the last read brought sealedSmallRead bytes or more
	plain   []byte                // opened, not returned yet: plain[pos:]
	pos     int
	rerr    error     // a record that did not open: sticky
	src     io.Reader // where records are read from: Conn, or what SetSource gave

	wmu     sync.Mutex
	wbuf    []byte // sealed records; pending is what of them is not written yet
	pending []byte
	werr    error        // a record that could not be sealed: sticky
	wdl     atomic.Int64 // the write deadline, Unix ns (0: none)
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
		if c.rpos < len(c.raw) {
			// Straight into p when the next records fit: no copy.
			out, used, err := c.o.Decode(p[:0], c.raw[c.rpos:], len(p))
			c.rpos += used
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
		if c.plain == nil && !c.inSmall { // what a large buffer holds opens into a large one
			c.plain = getSealedBuf()
		}
		plain, used, err := c.o.Decode(c.plain[:0], c.raw[c.rpos:], -1)
		c.plain, c.pos = plain, 0
		c.rpos += used
		if err != nil {
			c.rerr = err
			continue // what opened before the bad record is returned first
		}
		if len(c.plain) > 0 {
			break
		}
		c.makeRoom()
		if len(c.raw) == cap(c.raw) { // cannot happen: a record fits twice
			c.rerr = errors.New("sealed carrier: record larger than the read buffer")
			continue
		}
		n, err := c.src.Read(c.raw[len(c.raw):cap(c.raw)])
		c.raw = c.raw[:len(c.raw)+n]
		if n > 0 {
			c.busy = n >= len(c.small)
			continue
		}
		if err == io.EOF && c.rpos < len(c.raw) {
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

// makeRoom makes room in raw for the next read; nothing in plain is left
// to return. What is left in raw is the start of a record: it moves to
// the front only when the room behind it could not hold a whole one, so
// that most reads move nothing; it moves into a large buffer when it is
// in the small array. With nothing left, the next read goes into the
// small array if the last one was short, and the large buffers go back to
// the pool.
func (c *sealedConn) makeRoom() {
	switch {
	case c.rpos == len(c.raw) && !c.busy:
		if !c.inSmall {
			putSealedBuf(c.raw)
		}
		putSealedBuf(c.plain)
		c.raw, c.inSmall, c.plain, c.pos = c.small[:0], true, nil, 0
	case c.rpos == len(c.raw) && c.inSmall:
		c.raw, c.inSmall = getSealedBuf(), false
	case c.rpos == len(c.raw):
		c.raw = c.raw[:0]
	case c.inSmall:
		c.raw, c.inSmall = append(getSealedBuf(), c.raw[c.rpos:]...), false
	case cap(c.raw)-len(c.raw) < maxSealedRecord:
		c.raw = c.raw[:copy(c.raw, c.raw[c.rpos:])]
	default:
		return
	}
	c.rpos = 0
}

// WriteBuffers seals the concatenation of bufs (a carrier writer's batch
// of frame headers and payloads) into records and writes them, one write
// per sealedWriteChunk: the plaintext is gathered straight into the
// sealed buffer and sealed in place, with no flat copy of the batch first
// (the carrier writer uses this instead of Write). It consumes bufs, as
// net.Buffers.WriteTo does.
func (c *sealedConn) WriteBuffers(bufs [][]byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable(); err != nil {
		return 0, err
	}
	c.sealRoom(buffersLen(bufs))
	done := 0
	for {
		var (
			n   int
			err error
		)
		if c.wbuf, n, err = c.s.SealBuffers(c.wbuf[:0], bufs, sealedWriteChunk); err != nil {
			c.werr = err
			return done, err
		}
		if n == 0 {
			return done, nil
		}
		done += n
		if err := c.send(); err != nil {
			return done, err
		}
		for n > 0 { // drop what was sealed
			k := min(n, len(bufs[0]))
			bufs[0], n = bufs[0][k:], n-k
			if len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
		}
	}
}

// Write seals p into records and writes them.
func (c *sealedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable(); err != nil {
		return 0, err
	}
	c.sealRoom(len(p))
	done := 0
	for done < len(p) {
		chunk := p[done:min(len(p), done+sealedWriteChunk)]
		var err error
		if c.wbuf, err = c.s.Seal(c.wbuf[:0], chunk); err != nil {
			c.werr = err
			return done, err
		}
		done += len(chunk)
		if err := c.send(); err != nil {
			return done, err
		}
	}
	return done, nil
}

// writable is nil when a write may seal more: no sealing failure, the
// write deadline not passed (checked here, so that a write that could not
// go out seals nothing: a record sealed is a nonce spent), and the
// records a failed write left over written first.
func (c *sealedConn) writable() error {
	if c.werr != nil {
		return c.werr
	}
	if dl := c.wdl.Load(); dl != 0 && time.Now().UnixNano() >= dl {
		return os.ErrDeadlineExceeded
	}
	for len(c.pending) > 0 {
		n, err := c.Conn.Write(c.pending)
		c.pending = c.pending[n:]
		if err != nil {
			return err
		}
	}
	return nil
}

// send writes the records in wbuf. Those a failed write (a deadline that
// passed meanwhile) did not take stay pending and go first next time: they
// are sealed, their nonces spent, and their plaintext was counted as
// written, so the stream stays whole.
func (c *sealedConn) send() error {
	n, err := c.Conn.Write(c.wbuf)
	if err != nil {
		c.pending = c.wbuf[n:]
	}
	return err
}

// NetConn is the connection the records travel on, for its descriptor (a
// caller's own non-blocking system calls through SealNow's try and
// SetSource): bytes written to it around the sealed conn would break the
// record stream.
func (c *sealedConn) NetConn() net.Conn { return c.Conn }

// SetSource makes Read read the record stream from src instead of the
// wrapped conn: src reads that same conn (its descriptor, with system
// calls of the caller's choosing, actors' rawSource). Called before the
// first Read that reaches the conn, by the conn's one reader.
func (c *sealedConn) SetSource(src io.Reader) {
	c.rmu.Lock()
	c.src = src
	c.rmu.Unlock()
}

// SealNow is the immediate write of a batch (a carrier's frames written
// on the goroutine that has them, without waking a writer): it seals the
// concatenation of bufs, at most sealedWriteChunk bytes of it, into
// records, in place as WriteBuffers does, and hands them to try, which
// writes what the socket takes now and must not wait. sealed is how much
// plaintext it took (the caller drops that much of its batch: those bytes
// are in records now, and are never sealed again); pending says records
// are left that try did not take. The sealed conn owns them, and the next
// Write or WriteBuffers (even of nothing) writes them first, blocking, in
// order: the caller hands that to its writer goroutine, and until it ran
// SealNow only retries them and seals nothing. try's error is
// not returned: what it did not take is pending, and the blocking write
// meets the error again. err is a failure to seal (sticky, as in Write),
// with nothing taken. bufs is not changed.
//
// Who owns what: bufs stay the caller's; the records (wbuf, pending) are
// the sealed conn's; try is called with wmu held, so it must not call
// back into the conn.
func (c *sealedConn) SealNow(bufs [][]byte, try func([]byte) int) (sealed int, pending bool, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, len(c.pending) > 0, c.werr
	}
	if len(c.pending) > 0 { // a write left them: they go first
		c.pending = c.pending[tried(try, c.pending):]
		if len(c.pending) > 0 {
			return 0, true, nil
		}
	}
	c.sealRoom(buffersLen(bufs))
	if c.wbuf, sealed, err = c.s.SealBuffers(c.wbuf[:0], bufs, sealedWriteChunk); err != nil {
		c.werr = err
		return 0, false, err
	}
	c.pending = c.wbuf[tried(try, c.wbuf):]
	return sealed, len(c.pending) > 0, nil
}

// sealRoom readies wbuf for sealing n bytes of plaintext (up to a write
// chunk of them), with nothing pending: a pooled large buffer when they
// would not fit a small one, kept while the writes stay large; the first
// small write gives it back (an idle carrier's next PING), and a small
// one grows as the records need.
func (c *sealedConn) sealRoom(n int) {
	large := cap(c.wbuf) > sealedSmallWrite
	switch {
	case len(c.pending) > 0:
	case min(n, sealedWriteChunk) > sealedSmallWrite && cap(c.wbuf) < sealedReadBuffer:
		c.wbuf = getSealedBuf()
	case n <= sealedSmallWrite && large:
		putSealedBuf(c.wbuf)
		c.wbuf = nil
	}
}

// buffersLen is the length of the concatenation of bufs.
func buffersLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// tried is how much of p try wrote, within p's bounds.
func tried(try func([]byte) int, p []byte) int { return min(max(try(p), 0), len(p)) }

// SetDeadline sets both deadlines, and notes the write one.
func (c *sealedConn) SetDeadline(t time.Time) error {
	c.noteWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline sets the write deadline, and notes it.
func (c *sealedConn) SetWriteDeadline(t time.Time) error {
	c.noteWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *sealedConn) noteWriteDeadline(t time.Time) {
	if t.IsZero() {
		c.wdl.Store(0)
		return
	}
	c.wdl.Store(t.UnixNano())
}
