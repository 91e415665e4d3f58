package actors

// The application's side of a LocalConn (local.go): reads, writes, ends
// and deadlines, as a net.Conn.

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sockmux/sockmux/engine"
)

// LocalAddr is the stream's target, as an address.
func (c *LocalConn) LocalAddr() net.Addr { return localAddr(c.p.target) }

// RemoteAddr is the stream's target, as an address.
func (c *LocalConn) RemoteAddr() net.Addr { return localAddr(c.p.target) }

// SetDeadline sets the read and write deadlines.
func (c *LocalConn) SetDeadline(t time.Time) error {
	c.p.rd.set(t)
	c.p.wd.set(t)
	c.p.deadlineMoved()
	return nil
}

// SetReadDeadline sets the deadline of Reads, those waiting included.
func (c *LocalConn) SetReadDeadline(t time.Time) error {
	c.p.rd.set(t)
	c.p.deadlineMoved()
	return nil
}

// SetWriteDeadline sets the deadline of Writes, those waiting included.
func (c *LocalConn) SetWriteDeadline(t time.Time) error {
	c.p.wd.set(t)
	c.p.deadlineMoved()
	return nil
}

// deadlineMoved wakes the application's waiters to look at the deadlines
// again: one that waited before a deadline had a channel (deadline.wait
// was nil) waits on the new one from its next round.
func (p *localPipe) deadlineMoved() {
	p.mu.Lock()
	p.signal()
	p.mu.Unlock()
}

// localAddr is the address of both ends of a LocalConn: its target.
type localAddr string

// Network is "sockmux".
func (localAddr) Network() string { return "sockmux" }

// String is the target.
func (a localAddr) String() string { return string(a) }

// Target is what the stream was opened to.
func (c *LocalConn) Target() string { return c.p.target }

// Read reads what the peer sent: io.EOF after its FIN, an error wrapping
// ErrStreamReset if the stream was cut short.
func (c *LocalConn) Read(b []byte) (int, error) {
	p := c.p
	p.mu.Lock()
	for {
		switch {
		case p.closed:
			p.mu.Unlock()
			return 0, net.ErrClosed
		case p.err != nil:
			err := p.err
			p.mu.Unlock()
			return 0, err
		case p.rd.expired():
			p.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		case p.downBytes > 0:
			n := p.copyOut(b)
			// The Stream hears of what was read once it adds up to
			// a batch (creditBatch), not after every Read: it grants
			// credit only by the quarter window anyway.
			wake := n > 0 && p.unread >= p.creditBatch() && p.needWake()
			p.mu.Unlock()
			if wake {
				p.tell()
			}
			return n, nil
		case p.downEOF:
			p.mu.Unlock()
			return 0, io.EOF
		case len(b) == 0:
			p.mu.Unlock()
			return 0, nil
		}
		ch, dl := p.waitCh(), p.rd.wait()
		// A Stream holding its OPEN_OK sends it now: the peer may be
		// waiting for it before it sends what this Read waits for.
		wake := p.holdingOK && p.needWake()
		p.holdingOK = false
		p.readers++
		p.mu.Unlock()
		if wake {
			p.tell()
		}
		select {
		case <-ch:
		case <-dl:
		}
		p.mu.Lock()
		p.readers--
	}
}

// creditBatch is how many bytes read make a Read tell the Stream, with mu
// held: an eighth of its receive window, as the window grows (a stream
// whose window grew to 16 MiB tells it every 2 MiB, not every 32 KiB).
// Below it the Stream would not grant credit yet (engine.RecvWindow.Consumed
// waits for a quarter of the window), and no deadlock can come of holding
// them back: with every byte read, what is held back (under an eighth)
// and what the Stream was told (under a quarter, or it would have granted
// it) are less than the window, so the peer still has credit. The window
// the pipe knows may lag the Stream's by a wake-up; it only grows, so the
// eighth of the one known is within an eighth of the real one.
func (p *localPipe) creditBatch() int {
	if p.env == nil {
		return 0 // not attached: needWake says no
	}
	return int(p.window / 8)
}

// copyOut copies what is unread into b, with mu held, returning the
// buffers emptied to the pool.
func (p *localPipe) copyOut(b []byte) int {
	n, k := 0, 0
	for k < len(p.down) && n < len(b) {
		d := p.down[k]
		m := copy(b[n:], d.B[p.downOff:])
		n += m
		p.downOff += m
		if p.downOff < len(d.B) {
			break
		}
		engine.PutBuffer(d)
		p.downOff = 0
		k++
	}
	m := copy(p.down, p.down[k:])
	clear(p.down[m:])
	p.down = p.down[:m]
	p.downBytes -= n
	p.unread += n
	return n
}

// Write queues b for the peer, waiting while the pipe holds localUpMax
// bytes the stream has not sent, and while another Write is under way.
func (c *LocalConn) Write(b []byte) (int, error) {
	p := c.p
	p.mu.Lock()
	for p.writing {
		if p.wd.expired() {
			p.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		p.waitWrite()
	}
	p.writing = true
	n, err := p.write(b)
	p.writing = false
	p.signal() // the next Write's turn
	p.mu.Unlock()
	return n, err
}

// write is Write's, with mu held (and held again on return).
func (p *localPipe) write(b []byte) (int, error) {
	n := 0
	for {
		switch {
		case n > 0 && len(b) == 0:
			// All of b is queued: a reset its bytes provoked since is
			// the next call's to report, not this one's.
			return n, nil
		case p.closed:
			return n, net.ErrClosed
		case p.err != nil:
			return n, p.err
		case p.upEOF:
			return n, ErrWriteShut
		case p.gone:
			return n, fmt.Errorf("%w: the stream has ended", ErrStreamReset)
		case p.wd.expired():
			return n, os.ErrDeadlineExceeded
		case len(b) == 0:
			return n, nil
		}
		if room := localUpMax - p.upBytes; room > 0 {
			k := min(room, len(b))
			p.appendUp(b[:k])
			b, n = b[k:], n+k
			wake := p.armed && p.needWake()
			p.armed = false
			p.mu.Unlock()
			if wake {
				p.tell()
			}
			p.mu.Lock()
			continue
		}
		p.waitWrite()
	}
}

// waitWrite waits, with mu held and let go while it waits, for the pipe
// to change or the write deadline to pass.
func (p *localPipe) waitWrite() {
	ch, dl := p.waitCh(), p.wd.wait()
	p.mu.Unlock()
	select {
	case <-ch:
	case <-dl:
	}
	p.mu.Lock()
}

// appendUp copies b into the pipe's pooled buffers, with mu held: onto the
// last one while it has room, else into new ones of at most a frame. A
// write of bulkWrite bytes or more gets buffers of a whole frame, which
// the writes after it fill while the Stream has not taken them: bulk
// writes of any size then leave in frames as large as the link takes.
func (p *localPipe) appendUp(b []byte) {
	p.upBytes += len(b)
	if k := len(p.up); k > 0 {
		t := p.up[k-1]
		if m := min(cap(t.B)-len(t.B), len(b)); m > 0 {
			t.B = append(t.B, b[:m]...)
			b = b[m:]
		}
	}
	frame := p.frame
	if frame == 0 { // not attached yet: what most links take
		frame = engine.DefaultMaxPayload
	}
	for len(b) > 0 {
		m := min(len(b), frame)
		var buf *engine.Buffer
		if m >= bulkWrite {
			buf = engine.GetBuffer(frame)
			buf.B = buf.B[:m]
		} else {
			buf = engine.GetBuffer(m)
		}
		copy(buf.B, b)
		p.up = append(p.up, buf)
		b = b[m:]
	}
}

// bulkWrite is the least a Write must queue for its buffers to be a whole
// frame's (appendUp).
const bulkWrite = 16 << 10

// CloseWrite shuts the write side: the peer reads to its end once what was
// written has reached it.
func (c *LocalConn) CloseWrite() error {
	p := c.p
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return net.ErrClosed
	}
	wake := !p.upEOF && p.armed && p.needWake()
	p.upEOF, p.armed = true, false
	p.signal()
	p.mu.Unlock()
	if wake {
		p.tell()
	}
	return nil
}

// Close shuts the write side as CloseWrite does, and drops what the peer
// sent that was not read; the stream is reset if the peer sends more.
// Blocked Reads and Writes return net.ErrClosed.
func (c *LocalConn) Close() error {
	p := c.p
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return net.ErrClosed
	}
	p.closed = true
	wake := !p.upEOF && p.armed && p.needWake()
	p.upEOF, p.armed = true, false
	p.unread += p.downBytes // dropped unread: the peer's credit is not held by it
	putAll(p.down)
	p.down, p.downBytes, p.downOff = nil, 0, 0
	if !wake && p.unread > 0 {
		wake = p.needWake()
	}
	if p.gone || p.err != nil { // nothing more will come for it
		putAll(p.up)
		p.up, p.upBytes = nil, 0
	}
	p.signal()
	p.mu.Unlock()
	p.rd.set(time.Time{})
	p.wd.set(time.Time{})
	if wake {
		p.tell()
	}
	return nil
}

// deadline is a settable deadline a waiter can select on, as net.Pipe's:
// its channel is closed once the deadline passes. The channel and the
// timer are made when a deadline is first set: most streams never have
// one, and a nil channel is one a select never takes. (A waiter that took
// nil learns of a later deadline through the pipe's signal:
// deadlineMoved.)
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{} // nil until a deadline is set
}

// set moves the deadline to t (none when t is zero).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		if t.IsZero() {
			return
		}
		d.ch = make(chan struct{})
	}
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired: its function has closed ch, or is about to
	}
	d.timer = nil
	closed := isClosed(d.ch)
	if t.IsZero() {
		if closed {
			d.ch = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.ch = make(chan struct{})
		}
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.ch)
	}
}

// wait is closed once the deadline has passed; nil while none was ever
// set.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// expired says whether the deadline has passed.
func (d *deadline) expired() bool {
	ch := d.wait()
	return ch != nil && isClosed(ch)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
