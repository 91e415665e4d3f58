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
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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
			if err != nil && err != io.EOF {
				// A read that fails part-way through a frame's payload
				// returns the bytes it got still masked: the library
				// (coder/websocket v1.8, msgReader.read) returns before
				// it unmasks them. Taken as data they were garbage that
				// could complete a frame in progress, which the link
				// would deliver and acknowledge, and whose end put the
				// frame reader out of step. The carrier is dead either
				// way: nothing is lost by dropping them, as the peer
				// sends again what was not acknowledged.
				n = 0
			}
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
