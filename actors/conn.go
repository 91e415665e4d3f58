package actors

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"

	"sockmux/engine"
)

// connActor owns one local socket, accepted by a forward or dialled for
// the peer. Its reader goroutine reads only while the stream has credit
// (the gate) and holds no buffer while the socket is idle; its writer
// goroutine writes what the stream hands it and returns the buffers.
type connActor struct {
	env     *env
	self    *actor.PID
	stream  *actor.PID
	conn    net.Conn
	target  string // dial this when conn is nil
	maxRead int
	eof     bool // the socket's read side had ended before the reader started

	gate    *gate
	wq      *writeQueue
	running int // reader and writer goroutines alive
	closed  bool
	cancel  context.CancelFunc
}

func newConnection(e *env, stream *actor.PID, conn net.Conn, target string, p engine.Params) *connActor {
	return &connActor{env: e, stream: stream, conn: conn, target: target, maxRead: int(p.SendMax),
		gate: newGate(), wq: newWriteQueue(&e.stats.MaxQueuedBytes)}
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
	for {
		n, ok := c.gate.wait()
		if !ok {
			return
		}
		b, err := rd.read(int(min(n, int64(c.maxRead))))
		if b != nil {
			c.gate.take(int64(len(b.B)))
			c.env.send(c.stream, &dataIn{buf: b})
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
	if !errors.Is(err, net.ErrClosed) {
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
			w := nb
			_, err := w.WriteTo(conn)
			for i, b := range bufs {
				engine.PutBuffer(b)
				bufs[i] = nil
			}
			c.wq.written(total)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					c.env.send(c.stream, &ioFailed{err: err, write: true})
				}
				return
			}
			c.env.send(c.stream, &wrote{n: total})
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

// sockReader reads a socket into pooled buffers, taking a buffer only when
// bytes are there: an idle connection holds none. It uses the socket's raw
// file descriptor where it has one and a plain Read otherwise.
type sockReader struct {
	conn net.Conn
	raw  syscall.RawConn
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

// read returns up to max bytes (nil with the error at the end).
func (r *sockReader) read(max int) (*engine.Buffer, error) {
	if r.raw == nil {
		b := engine.GetBuffer(max)
		n, err := r.conn.Read(b.B)
		if n == 0 {
			engine.PutBuffer(b)
			return nil, err
		}
		b.B = b.B[:n]
		return engine.ShrinkBuffer(b), err
	}
	return r.rawRead(max, true)
}

// peek returns what is already waiting, up to max bytes, without waiting
// (nil for nothing).
func (r *sockReader) peek(max int) (*engine.Buffer, error) {
	if r.raw == nil {
		return nil, nil
	}
	return r.rawRead(max, false)
}

func (r *sockReader) rawRead(max int, wait bool) (*engine.Buffer, error) {
	var (
		b    *engine.Buffer
		n    int
		rerr error
	)
	err := r.raw.Read(func(fd uintptr) bool {
		b = engine.GetBuffer(max)
		n, rerr = syscall.Read(int(fd), b.B)
		if rerr == syscall.EAGAIN {
			engine.PutBuffer(b)
			b, rerr = nil, nil
			return !wait
		}
		if rerr == syscall.EINTR {
			engine.PutBuffer(b)
			b, rerr = nil, nil
			return false
		}
		return true
	})
	if err != nil {
		if b != nil {
			engine.PutBuffer(b)
		}
		return nil, err
	}
	if rerr != nil {
		engine.PutBuffer(b)
		return nil, rerr
	}
	if b == nil {
		return nil, nil
	}
	if n == 0 {
		engine.PutBuffer(b)
		return nil, io.EOF
	}
	b.B = b.B[:n]
	return engine.ShrinkBuffer(b), nil
}
