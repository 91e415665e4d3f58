package carriers

// A WebSocket as a net.Conn with the semantics of a TCP connection:
// deadlines that time out a blocked Read or Write and leave the connection
// usable, Close that delivers what was written before it. The library's
// own websocket.NetConn closes the connection when a deadline passes
// during a read or a write, which a carrier's handshake and write stall
// timers cannot live with, and gives Dial's connections no addresses.
//
// The reads go through a pump: one goroutine reads the messages with the
// library into a ring buffer, from which Read copies with its deadline.
// The writes go through asyncConn, which queues them for a writer
// goroutine, so Write waits (with its deadline) only for room in that
// queue, never in the middle of a frame. Write puts its bytes in binary
// frames itself, masking them as it copies them into the queue: the
// library's writer would copy them through its 4 KiB buffer first, and
// it only writes its control frames (a pong, a close echo), each whole in
// one write to asyncConn, so frames never interleave.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const (
	// wsMessageMax is the most bytes one Write puts in one binary
	// message: a larger Write is several, each waiting for room.
	wsMessageMax = 128 << 10
	// wsQueueMax is how many written bytes may wait for the writer
	// goroutine before Write waits for room.
	wsQueueMax = 256 << 10
	// wsRingSize is the read side's buffer: when it is full the pump stops
	// reading and TCP pushes back.
	wsRingSize = 256 << 10
	// wsPumpChunk is the most the pump reads before Read may have it.
	wsPumpChunk = 64 << 10
	// wsCloseFlush bounds how long Close spends writing what is queued.
	wsCloseFlush = 2 * time.Second
)

// wsConn is one WebSocket carrier.
type wsConn struct {
	ws     *websocket.Conn
	out    *asyncConn // what ws reads and writes
	client bool       // masks its frames
	tlsc   *tls.Conn  // for ConnectionState; nil without TLS
	local  net.Addr
	remote net.Addr

	rdl, wdl deadline
	done     chan struct{} // closed by Close
	closing  atomic.Bool
	pumpDone chan struct{}
	readable chan struct{} // cap 1: the pump added bytes or ended
	roomy    chan struct{} // cap 1: a Read made room in the ring
	rmu, wmu sync.Mutex    // one Read, one Write at a time

	mu    sync.Mutex // guards the ring and rerr
	ring  []byte
	head  int   // where the unread bytes start
	count int   // unread bytes
	rerr  error // why the pump ended (io.EOF for an orderly end)
}

// newWSConn wraps ws, which reads and writes out (put in queued mode
// here), and starts the pump. raw is the connection under out, for the
// addresses and the TLS state.
func newWSConn(ws *websocket.Conn, out *asyncConn, raw net.Conn, client bool) *wsConn {
	ws.SetReadLimit(-1) // messages are streamed through the ring, never held whole
	c := &wsConn{
		ws: ws, out: out, client: client, local: raw.LocalAddr(), remote: raw.RemoteAddr(),
		rdl: newDeadline(), wdl: newDeadline(),
		done: make(chan struct{}), pumpDone: make(chan struct{}),
		readable: make(chan struct{}, 1), roomy: make(chan struct{}, 1),
		ring: make([]byte, wsRingSize),
	}
	c.tlsc, _ = raw.(*tls.Conn)
	out.startQueue()
	go c.pump()
	return c
}

// pump reads the peer's messages into the ring until the WebSocket ends.
func (c *wsConn) pump() {
	defer close(c.pumpDone)
	err := c.pumpMessages()
	c.mu.Lock()
	c.rerr = err
	c.mu.Unlock()
	notify(c.readable)
}

func (c *wsConn) pumpMessages() error {
	for {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return c.readErr(err, true)
		}
		if typ != websocket.MessageBinary {
			return fmt.Errorf("websocket: the peer sent a %v message; a carrier carries binary ones", typ)
		}
		for {
			space := c.space()
			if space == nil {
				return net.ErrClosed
			}
			n, err := r.Read(space)
			if n > 0 {
				c.mu.Lock()
				c.count += n
				c.mu.Unlock()
				notify(c.readable)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return c.readErr(err, false)
			}
		}
	}
}

// space waits for room in the ring and returns the free bytes that follow
// the unread ones without wrapping; nil once closed.
func (c *wsConn) space() []byte {
	for {
		c.mu.Lock()
		if c.count < len(c.ring) {
			tail := (c.head + c.count) % len(c.ring)
			end := len(c.ring)
			if tail < c.head {
				end = c.head
			}
			c.mu.Unlock()
			// A bounded read: the library reads all it is asked for
			// before it returns, so Read gets the bytes as they come.
			return c.ring[tail:min(end, tail+wsPumpChunk)]
		}
		c.mu.Unlock()
		select {
		case <-c.roomy:
		case <-c.done:
			return nil
		}
	}
}

// readErr is what Read returns once the pump has stopped on err: io.EOF
// for a close frame saying normal closure or going away, or for the
// connection's end between messages; net.ErrClosed after Close.
func (c *wsConn) readErr(err error, between bool) error {
	if c.closing.Load() {
		return net.ErrClosed
	}
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return io.EOF
	case -1:
	default:
		return fmt.Errorf("websocket: %w", err)
	}
	if between && errors.Is(err, io.EOF) {
		return io.EOF
	}
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return fmt.Errorf("websocket: %w", err)
}

// Read reads what the peer sent, waiting for it until the read deadline.
func (c *wsConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		select {
		case <-c.done:
			return 0, c.opErr("read", net.ErrClosed)
		case <-c.rdl.wait():
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		default:
		}
		if len(p) == 0 {
			return 0, nil
		}
		c.mu.Lock()
		head, count, rerr := c.head, c.count, c.rerr
		c.mu.Unlock()
		if count > 0 {
			// The unread bytes are the reader's: the pump writes only
			// past them.
			n := copy(p, c.ring[head:min(head+count, len(c.ring))])
			if n < len(p) && n < count {
				n += copy(p[n:], c.ring[:count-n])
			}
			c.mu.Lock()
			c.head = (c.head + n) % len(c.ring)
			c.count -= n
			c.mu.Unlock()
			notify(c.roomy)
			return n, nil
		}
		if rerr != nil {
			if rerr == io.EOF {
				return 0, io.EOF
			}
			return 0, c.opErr("read", rerr)
		}
		select {
		case <-c.readable:
		case <-c.done:
		case <-c.rdl.wait():
		}
	}
}

// Write sends p in binary messages, waiting for room in the queue until
// the write deadline; a Write that times out has sent the first n bytes,
// whole messages, and the connection goes on.
func (c *wsConn) Write(p []byte) (int, error) {
	return c.WriteBuffers([][]byte{p})
}

// WriteBuffers writes bufs as if they were one buffer, in as few messages
// as Write would make of it: a carrier's batch of frames goes out without
// being copied into one buffer first.
func (c *wsConn) WriteBuffers(bufs [][]byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	left := 0
	for _, b := range bufs {
		left += len(b)
	}
	if left == 0 {
		return 0, nil
	}
	n := 0
	cur := &cursor{bufs: bufs}
	for {
		if err := c.out.waitRoom(c.done, c.wdl.wait()); err != nil {
			return n, c.opErr("write", err)
		}
		size := min(left, wsMessageMax)
		if err := c.out.enqueueFrame(c.client, cur, size); err != nil {
			if c.closing.Load() {
				err = net.ErrClosed
			}
			return n, c.opErr("write", err)
		}
		n += size
		left -= size
		if left == 0 {
			return n, nil
		}
	}
}

// Close sends a close frame after what was written, flushes it all (for
// up to wsCloseFlush) and closes the connection; it does not wait for the
// peer's close frame. Blocked Reads and Writes return net.ErrClosed.
func (c *wsConn) Close() error {
	if c.closing.Swap(true) {
		return c.opErr("close", net.ErrClosed)
	}
	close(c.done)
	c.wmu.Lock() // a Write in progress ends now: it never blocks on the network
	c.out.enqueue(closeFrame(c.client))
	c.wmu.Unlock()
	err := c.out.Close()
	// The library's own state: its reads fail now that the connection is
	// closed, so the pump lets go of them.
	c.ws.CloseNow()
	<-c.pumpDone
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return c.opErr("close", err)
	}
	return nil
}

// closeFrame is a close frame saying normal closure, masked when sent by a
// client.
func closeFrame(masked bool) []byte {
	payload := []byte{byte(websocket.StatusNormalClosure >> 8), byte(websocket.StatusNormalClosure & 0xff)}
	if !masked {
		return append([]byte{0x88, byte(len(payload))}, payload...)
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	f := append([]byte{0x88, 0x80 | byte(len(payload))}, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

func (c *wsConn) opErr(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: op, Net: "websocket", Source: c.local, Addr: c.remote, Err: err}
}

func (c *wsConn) LocalAddr() net.Addr  { return c.local }
func (c *wsConn) RemoteAddr() net.Addr { return c.remote }

func (c *wsConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *wsConn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *wsConn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

// ConnectionState is the TLS state of a wss:// carrier (the zero state of
// a ws:// one), so that a verified peer certificate counts as it does on
// tls://.
func (c *wsConn) ConnectionState() tls.ConnectionState {
	if c.tlsc == nil {
		return tls.ConnectionState{}
	}
	return c.tlsc.ConnectionState()
}

// notify wakes whoever waits on ch, without blocking.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deadline is a deadline as a channel that is closed once it passes, as
// net.Pipe's.
type deadline struct {
	mu     *sync.Mutex
	timer  **time.Timer
	cancel *chan struct{}
}

func newDeadline() deadline {
	ch := make(chan struct{})
	var t *time.Timer
	return deadline{mu: &sync.Mutex{}, timer: &t, cancel: &ch}
}

// set moves the deadline to t (zero: none).
func (d deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if *d.timer != nil && !(*d.timer).Stop() {
		<-*d.cancel // the timer fired: wait for it to close cancel
	}
	*d.timer = nil
	closed := isClosed(*d.cancel)
	if t.IsZero() {
		if closed {
			*d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			*d.cancel = make(chan struct{})
		}
		ch := *d.cancel
		*d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(*d.cancel)
	}
}

// wait is closed once the deadline has passed.
func (d deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return *d.cancel
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

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
