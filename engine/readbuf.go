package engine

import (
	"io"
	"sync"
)

// A carrier's Reader spends almost all its life waiting for the next
// frame, and on a hub most carriers are idle: a read buffer of its own
// would be 32 KiB a link held only to wait. So a Reader reads into a
// small array of its own while the carrier is quiet (a PING, an ACK, a
// few small frames fit), and into a large buffer, taken from a pool, only
// while reads bring more than the small one holds or a frame is cut
// across reads. Once it has decoded everything in the large buffer and
// the last read was a short one, the buffer goes back to the pool before
// the next read waits. A busy carrier keeps its large buffer from read to
// read, so bulk transfers read as much at once as before.

// smallRead is the small buffer's size: a quiet carrier's frames in one
// read, and a short read, one that brought less, says it has gone quiet.
const smallRead = 512

// largeBufs holds the large read buffers of every Reader that has none.
var largeBufs sync.Pool // *[]byte

// readBuf is a Reader's buffer: buf[r:w] is read and not yet decoded.
type readBuf struct {
	src   io.Reader
	size  int // the large buffer's
	small [smallRead]byte
	large *[]byte // from largeBufs, while this holds it
	buf   []byte  // the small array, or *large
	r, w  int
	busy  bool  // the last read brought smallRead bytes or more
	err   error // the last read's, returned after the bytes it brought
}

func (b *readBuf) init(src io.Reader, size int) {
	b.src, b.size = src, size
	b.buf = b.small[:min(size, smallRead)] // a Reader no larger than smallRead never takes a large one
}

// buffered is how many bytes are read and not decoded.
func (b *readBuf) buffered() int { return b.w - b.r }

// bytes are the buffered bytes; they stay buffered.
func (b *readBuf) bytes() []byte { return b.buf[b.r:b.w] }

// discard drops the first n buffered bytes.
func (b *readBuf) discard(n int) { b.r += n }

// read copies buffered bytes into p, without reading; it returns how many.
func (b *readBuf) read(p []byte) int {
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n
}

// readFull fills p from the buffer, reading as needed: an end before p is
// full is io.ErrUnexpectedEOF once some of it came, io.EOF otherwise.
func (b *readBuf) readFull(p []byte) error {
	n := b.read(p)
	for n < len(p) {
		if err := b.fill(); err != nil {
			if err == io.EOF && n > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		n += b.read(p[n:])
	}
	return nil
}

// maxEmptyReads is how many reads in a row may bring nothing and no
// error before fill gives up (as bufio does).
const maxEmptyReads = 100

// fill reads once more: into the small array while the carrier is quiet,
// into the large buffer while it is busy (taken now, if need be). Its
// callers take what is buffered first (readFull), so nothing is.
func (b *readBuf) fill() error {
	if b.err != nil {
		err := b.err
		b.err = nil
		return err
	}
	if b.r == b.w {
		b.r, b.w = 0, 0
		if b.busy {
			b.takeLarge()
		} else {
			b.putLarge()
		}
	} else if b.r > 0 { // not so: keep what is buffered, at the front
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	for range maxEmptyReads {
		n, err := b.src.Read(b.buf[b.w:])
		b.w += n
		if n > 0 {
			b.busy = n >= smallRead
			b.err = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// takeLarge moves what is buffered into a large buffer from the pool,
// unless it has one already or is no larger than the small array.
func (b *readBuf) takeLarge() {
	if b.large != nil || b.size <= smallRead {
		return
	}
	p, _ := largeBufs.Get().(*[]byte)
	if p == nil || cap(*p) < b.size {
		s := make([]byte, b.size)
		p = &s
	}
	b.large = p
	buf := (*p)[:b.size]
	b.w = copy(buf, b.buf[b.r:b.w])
	b.r, b.buf = 0, buf
}

// putLarge gives the large buffer back, when nothing is buffered in it.
func (b *readBuf) putLarge() {
	if b.large == nil || b.r != b.w {
		return
	}
	largeBufs.Put(b.large)
	b.large, b.buf, b.r, b.w = nil, b.small[:], 0, 0
}
