package actors

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/sys/unix"

	"sockmux/engine"
)

// connActor owns one local socket, accepted by a forward or dialled for
// the peer. Its reader goroutine reads only while the stream has credit
// (the gate) and holds no buffer while the socket is idle; its writer
// goroutine writes what the stream hands it and returns the buffers.
type connActor struct {
	env      *env
	self     *actor.PID
	stream   *actor.PID
	conn     net.Conn
	target   string // dial this when conn is nil
	maxRead  int
	eof      bool // the socket's read side had ended before the reader started
	datagram bool // UDP: one read is one datagram is one frame, never split or merged

	gate    *gate
	wq      *writeQueue
	running int // reader and writer goroutines alive
	closed  bool
	cancel  context.CancelFunc
}

func newConnection(e *env, stream *actor.PID, conn net.Conn, target string, p engine.Params, datagram bool) *connActor {
	c := &connActor{env: e, stream: stream, conn: conn, target: target, maxRead: int(p.SendMax), datagram: datagram,
		gate: newGate(&e.stats.CreditStalls), wq: newWriteQueue(&e.stats.MaxQueuedBytes)}
	c.wq.noCoalesce = datagram
	return c
}

func (c *connActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *grant:
		c.gate.add(m.n)
	case *write:
		c.wq.push(m.buf)
	case *ioExit:
		c.running--
		c.maybeClosed(ctx)
	case *closeWrite:
		c.wq.finish()
	case *closeAfter:
		// Write the last words, then close: the reader stops now.
		c.wq.push(m.buf)
		c.wq.finish()
		c.gate.close()
		if c.conn != nil {
			_ = c.conn.SetReadDeadline(time.Now())
		}
	case *abort:
		c.shut()
		c.maybeClosed(ctx)
	case *dialDone:
		c.cancel = nil
		if m.err != nil {
			ctx.Send(c.stream, &dialed{err: m.err})
			c.shut()
			c.maybeClosed(ctx)
			return
		}
		c.conn = m.conn
		if c.closed {
			c.conn.Close()
			c.maybeClosed(ctx)
			return
		}
		c.startIO()
		ctx.Send(c.stream, &dialed{})
	case *actor.Started:
		c.self = ctx.Self()
		if c.conn != nil {
			c.startIO()
			return
		}
		dctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		self, target, dial := c.self, c.target, c.env.cfg.DialTarget
		if c.datagram {
			dial = func(ctx context.Context, addr string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "udp", addr)
			}
		}
		c.env.goroutine(func() {
			conn, err := dial(dctx, target)
			c.env.send(self, &dialDone{conn: conn, err: err})
		})
	case *actor.Stopping:
		c.shut()
	}
}

func (c *connActor) startIO() {
	c.running = 2
	conn := c.conn
	c.env.goroutine(func() { c.readLoop(conn) })
	c.env.goroutine(func() { c.writeLoop(conn) })
}

// shut drops what is queued, stops the goroutines and closes the socket.
func (c *connActor) shut() {
	if c.closed {
		return
	}
	c.closed = true
	c.wq.abort()
	c.gate.close()
	if c.cancel != nil {
		c.cancel()
	}
	if c.conn != nil {
		c.conn.Close()
	}
}

// maybeClosed tells the stream once the socket is closed and no goroutine
// or dial of this connection is left.
func (c *connActor) maybeClosed(ctx actor.Context) {
	if c.running > 0 || c.cancel != nil {
		return
	}
	if c.conn != nil {
		c.conn.Close()
	}
	if c.stream != nil {
		ctx.Send(c.stream, &connClosed{})
		c.stream = nil
	}
}

func (c *connActor) readLoop(conn net.Conn) {
	defer c.env.send(c.self, &ioExit{})
	rd := newSockReader(conn)
	if c.eof {
		c.readDone(io.EOF)
		return
	}
	if c.datagram {
		c.readDatagrams(rd)
		return
	}
	for {
		n, ok := c.gate.wait()
		if !ok {
			return
		}
		bufs, k, err := rd.read(int(min(n, int64(c.maxRead*readFrames))), c.maxRead)
		if k > 0 {
			c.gate.take(int64(k))
			c.env.send(c.stream, &dataIn{bufs: bufs})
		}
		if err != nil {
			c.readDone(err)
			return
		}
	}
}

// readDatagrams reads whole datagrams, each a frame of its own. It waits
// for the stream to have some credit (a new stream's first grant is on its
// way), and then drops, and counts, a datagram that does not fit a frame or
// what is left of the credit: a datagram is never cut.
func (c *connActor) readDatagrams(rd *sockReader) {
	for {
		if _, ok := c.gate.wait(); !ok {
			return
		}
		bufs, n, err := rd.read(maxDatagram, maxDatagram)
		if n > 0 {
			if n > c.maxRead || !c.gate.tryTake(int64(n)) {
				c.env.stats.DroppedDatagrams.Add(1)
				c.env.log.Debug("datagram dropped", "bytes", n, "frame_limit", c.maxRead)
				putAll(bufs)
			} else {
				c.env.send(c.stream, &dataIn{bufs: bufs})
			}
		}
		if err != nil {
			c.readDone(err)
			return
		}
	}
}

func (c *connActor) readDone(err error) {
	if errors.Is(err, io.EOF) {
		c.env.send(c.stream, &readEOF{})
		return
	}
	if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.env.send(c.stream, &ioFailed{err: err})
	}
}

func (c *connActor) writeLoop(conn net.Conn) {
	defer c.env.send(c.self, &ioExit{})
	var (
		bufs []*engine.Buffer
		nb   net.Buffers
	)
	for {
		var fin, ok bool
		bufs, fin, ok = c.wq.take(bufs[:0])
		if !ok {
			for i, b := range bufs {
				engine.PutBuffer(b)
				bufs[i] = nil
			}
			return
		}
		if len(bufs) > 0 {
			nb = nb[:0]
			total := 0
			for _, b := range bufs {
				nb = append(nb, b.B)
				total += len(b.B)
			}
			var err error
			if c.datagram { // one write per datagram: writev would merge them
				for _, b := range nb {
					if _, err = conn.Write(b); err != nil {
						break
					}
				}
			} else {
				w := nb
				_, err = w.WriteTo(conn)
			}
			for i, b := range bufs {
				engine.PutBuffer(b)
				bufs[i] = nil
			}
			queued := c.wq.written(total)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					c.env.send(c.stream, &ioFailed{err: err, write: true})
				}
				return
			}
			c.env.send(c.stream, &wrote{n: total, queued: queued})
		}
		if fin {
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			} else {
				conn.Close()
			}
			return
		}
	}
}

// readFrames is how many frames' worth one read of a local socket may take:
// one readv fills up to this many pooled buffers, which travel together and
// leave in one carrier write.
const readFrames = 4

// sockReader reads a socket into pooled buffers, taking buffers only when
// bytes are there: an idle connection holds none. It uses the socket's raw
// file descriptor where it has one, and a plain Read otherwise.
type sockReader struct {
	conn net.Conn
	raw  syscall.RawConn
	iovs [][]byte
}

func newSockReader(conn net.Conn) *sockReader {
	r := &sockReader{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
		}
	}
	return r
}

// read reads up to max bytes into buffers of at most frame bytes each and
// returns them with the byte count (no buffers, with the error, at the end).
func (r *sockReader) read(max, frame int) ([]*engine.Buffer, int, error) {
	if r.raw == nil {
		b := engine.GetBuffer(min(max, frame))
		n, err := r.conn.Read(b.B)
		if n == 0 {
			engine.PutBuffer(b)
			return nil, 0, err
		}
		b.B = b.B[:n]
		return []*engine.Buffer{engine.ShrinkBuffer(b)}, n, err
	}
	return r.rawRead(max, frame, true)
}

// peek returns what is already waiting, up to max bytes in one buffer,
// without waiting (nil for nothing).
func (r *sockReader) peek(max int) (*engine.Buffer, error) {
	if r.raw == nil {
		return nil, nil
	}
	bufs, _, err := r.rawRead(max, max, false)
	if len(bufs) == 0 {
		return nil, err
	}
	return bufs[0], err
}

func (r *sockReader) rawRead(max, frame int, wait bool) ([]*engine.Buffer, int, error) {
	if max <= 0 {
		return nil, 0, nil
	}
	var (
		bufs []*engine.Buffer
		n    int
		rerr error
	)
	err := r.raw.Read(func(fd uintptr) bool {
		bufs, r.iovs = bufs[:0], r.iovs[:0]
		for left := max; left > 0; left -= frame {
			b := engine.GetBuffer(min(left, frame))
			bufs = append(bufs, b)
			r.iovs = append(r.iovs, b.B)
		}
		if len(r.iovs) == 1 {
			n, rerr = syscall.Read(int(fd), r.iovs[0])
		} else {
			n, rerr = unix.Readv(int(fd), r.iovs)
		}
		clear(r.iovs)
		if rerr == syscall.EAGAIN || rerr == syscall.EINTR {
			// Nothing there: hold no buffer while waiting. A peek
			// is done; a read waits for the socket to be readable.
			putAll(bufs)
			bufs, n, rerr = bufs[:0], 0, nil
			return !wait
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil || n <= 0 {
		empty := len(bufs) == 0
		putAll(bufs)
		if err == nil && !empty {
			err = io.EOF // a read of 0 bytes
		}
		return nil, 0, err
	}
	// Keep the buffers the bytes reached; the last may be partly full.
	k := 0
	for left := n; left > 0; k++ {
		m := min(left, len(bufs[k].B))
		bufs[k].B = bufs[k].B[:m]
		left -= m
	}
	putAll(bufs[k:])
	bufs = bufs[:k]
	bufs[k-1] = engine.ShrinkBuffer(bufs[k-1])
	return bufs, n, nil
}

func putAll(bufs []*engine.Buffer) {
	for i, b := range bufs {
		engine.PutBuffer(b)
		bufs[i] = nil
	}
}
