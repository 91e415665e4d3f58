package carriers

// The connection under a WebSocket carrier: frames queued, masked, and
// written by one goroutine (see wsconn.go for the carrier itself).

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// asyncConn is the connection under a WebSocket. Reads pass through.
// Writes go straight to the connection until startQueue (the upgrade's
// request and response); from then on they are queued and a writer
// goroutine writes them, all that is queued in one write, so that no
// write blocks on the network.
type asyncConn struct {
	net.Conn

	mu      sync.Mutex
	queued  bool
	closed  bool
	pending []byte // written, not yet taken by the writer
	spare   []byte // the writer's last buffer, for reuse
	err     error  // the writer's error, for good
	kick    chan struct{}
	room    chan struct{} // cap 1: the writer took what was pending
	exited  chan struct{} // the writer ended
}

func newAsyncConn(c net.Conn) *asyncConn {
	return &asyncConn{Conn: c, kick: make(chan struct{}, 1), room: make(chan struct{}, 1), exited: make(chan struct{})}
}

// startQueue queues the writes from now on.
func (a *asyncConn) startQueue() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.queued || a.closed {
		return
	}
	a.queued = true
	go a.writer()
}

func (a *asyncConn) Write(p []byte) (int, error) {
	a.mu.Lock()
	if !a.queued {
		a.mu.Unlock()
		return a.Conn.Write(p)
	}
	if err := a.errLocked(); err != nil {
		a.mu.Unlock()
		return 0, err
	}
	a.pending = append(a.pending, p...)
	a.mu.Unlock()
	notify(a.kick)
	return len(p), nil
}

// cursor is a position in a list of buffers.
type cursor struct {
	bufs   [][]byte
	i, off int
}

// enqueueFrame queues one final binary frame of the next size bytes at
// cur, masked with a new key when mask is set, and moves cur past them.
// The library's own frames (pongs, the close echo) come through Write,
// each whole in one call, so frames never interleave.
func (a *asyncConn) enqueueFrame(mask bool, cur *cursor, size int) error {
	var hdr [14]byte
	hdr[0] = 0x80 | 0x2 // FIN, binary
	h := 2
	switch {
	case size <= 125:
		hdr[1] = byte(size)
	case size <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(size))
		h = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(size))
		h = 10
	}
	var key [4]byte
	if mask {
		hdr[1] |= 0x80
		_, _ = rand.Read(key[:])
		copy(hdr[h:], key[:])
		h += 4
	}
	a.mu.Lock()
	if err := a.errLocked(); err != nil {
		a.mu.Unlock()
		return err
	}
	a.pending = append(a.pending, hdr[:h]...)
	pos := 0 // into the payload, for the key's phase
	for size > 0 {
		b := cur.bufs[cur.i][cur.off:]
		k := min(len(b), size)
		if mask {
			start := len(a.pending)
			a.pending = slices.Grow(a.pending, k)[:start+k] // not cleared: written over at once
			maskCopy(a.pending[start:], b[:k], key, pos)
		} else {
			a.pending = append(a.pending, b[:k]...)
		}
		pos += k
		size -= k
		if k == len(b) {
			cur.i, cur.off = cur.i+1, 0
		} else {
			cur.off += k
		}
	}
	a.mu.Unlock()
	notify(a.kick)
	return nil
}

// maskCopy copies src to dst XORed with key, starting at the key's byte
// pos%4 (RFC 6455 §5.3), 64 bytes a round: as fast as the memory.
func maskCopy(dst, src []byte, key [4]byte, pos int) {
	var k [4]byte
	for i := range k {
		k[i] = key[(pos+i)%4]
	}
	k32 := uint64(binary.LittleEndian.Uint32(k[:]))
	k64 := k32 | k32<<32
	dst = dst[:len(src)]
	for len(src) >= 64 {
		s, d := src[:64:64], dst[:64:64]
		binary.LittleEndian.PutUint64(d[0:], binary.LittleEndian.Uint64(s[0:])^k64)
		binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(s[8:])^k64)
		binary.LittleEndian.PutUint64(d[16:], binary.LittleEndian.Uint64(s[16:])^k64)
		binary.LittleEndian.PutUint64(d[24:], binary.LittleEndian.Uint64(s[24:])^k64)
		binary.LittleEndian.PutUint64(d[32:], binary.LittleEndian.Uint64(s[32:])^k64)
		binary.LittleEndian.PutUint64(d[40:], binary.LittleEndian.Uint64(s[40:])^k64)
		binary.LittleEndian.PutUint64(d[48:], binary.LittleEndian.Uint64(s[48:])^k64)
		binary.LittleEndian.PutUint64(d[56:], binary.LittleEndian.Uint64(s[56:])^k64)
		src, dst = src[64:], dst[64:]
	}
	for len(src) >= 8 { // a multiple of 4 bytes on: the key's phase is unchanged
		binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(src)^k64)
		src, dst = src[8:], dst[8:]
	}
	for i := range src {
		dst[i] = src[i] ^ k[i%4]
	}
}

// enqueue queues p unless the connection is closed or failed.
func (a *asyncConn) enqueue(p []byte) { _, _ = a.Write(p) }

func (a *asyncConn) errLocked() error {
	switch {
	case a.err != nil:
		return a.err
	case a.closed:
		return net.ErrClosed
	}
	return nil
}

// writeErr is the writer's error, nil while it is well.
func (a *asyncConn) writeErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// waitRoom waits until fewer than wsQueueMax bytes are queued, done is
// closed (net.ErrClosed) or expired is (os.ErrDeadlineExceeded), checked
// in that order first.
func (a *asyncConn) waitRoom(done, expired <-chan struct{}) error {
	for {
		select {
		case <-done:
			return net.ErrClosed
		case <-expired:
			return os.ErrDeadlineExceeded
		default:
		}
		a.mu.Lock()
		n, err := len(a.pending), a.errLocked()
		a.mu.Unlock()
		if err != nil {
			return err
		}
		if n < wsQueueMax {
			return nil
		}
		select {
		case <-a.room:
		case <-done:
		case <-expired:
		}
	}
}

// writer writes what is queued until the connection closes (after writing
// what is left) or a write fails.
func (a *asyncConn) writer() {
	defer close(a.exited)
	for {
		a.mu.Lock()
		for len(a.pending) == 0 {
			if a.closed {
				a.mu.Unlock()
				return
			}
			a.mu.Unlock()
			<-a.kick
			a.mu.Lock()
		}
		buf := a.pending
		a.pending, a.spare = a.spare[:0], nil
		a.mu.Unlock()
		notify(a.room)
		_, err := a.Conn.Write(buf)
		a.mu.Lock()
		if cap(buf) <= 2*wsQueueMax {
			a.spare = buf[:0]
		}
		if err != nil {
			a.err = err
			a.pending = nil
			a.mu.Unlock()
			notify(a.room)
			return
		}
		a.mu.Unlock()
	}
}

// Close writes what is queued, for up to wsCloseFlush, and closes the
// connection. Closing again does nothing.
func (a *asyncConn) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	queued := a.queued
	a.mu.Unlock()
	if queued {
		_ = a.Conn.SetWriteDeadline(time.Now().Add(wsCloseFlush))
		notify(a.kick)
		<-a.exited
	}
	return a.Conn.Close()
}

// upgradedBody is the body of a client's 101 response: the connection,
// the bytes its response reader had read past the head first.
type upgradedBody struct {
	br interface {
		io.Reader
		Buffered() int
	}
	c *asyncConn
}

func (b *upgradedBody) Read(p []byte) (int, error) {
	if b.br != nil {
		if n := b.br.Buffered(); n > 0 {
			return b.br.Read(p[:min(len(p), n)])
		}
		b.br = nil
	}
	return b.c.Read(p)
}

func (b *upgradedBody) Write(p []byte) (int, error) { return b.c.Write(p) }
func (b *upgradedBody) Close() error                { return b.c.Close() }
