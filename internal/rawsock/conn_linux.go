//go:build linux

package rawsock

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is a connected TCP socket held as its raw, non-blocking descriptor
// (see the package doc). It is a net.Conn and a syscall.Conn, with
// CloseWrite, CloseRead and SetLinger as *net.TCPConn has them. Its
// owner must Close it: unlike Go's net, nothing closes a lost Conn's
// descriptor for it.
type Conn struct {
	// mu guards fd's use: a raw call holds it for reading, Close and the
	// move into an *os.File for writing.
	mu     sync.RWMutex
	fd     int
	closed bool
	f      *os.File        // set once the Conn waits: then everything is f's
	fraw   syscall.RawConn // f's

	laddr, raddr net.Addr // raddr as accept or the dialler gave it; laddr asked for once
	lonce        sync.Once
}

// New makes a Conn of fd, a connected, non-blocking TCP socket, which the
// Conn owns from now on; raddr is its peer's address when the caller
// knows it (nil asks the kernel when someone wants it).
func New(fd int, raddr net.Addr) *Conn {
	return &Conn{fd: fd, raddr: raddr}
}

// file moves the descriptor into an *os.File, once, for a call that must
// wait; it returns nil when the Conn is closed.
func (c *Conn) file() *os.File {
	c.mu.RLock()
	f := c.f
	closed := c.closed
	c.mu.RUnlock()
	if f != nil || closed {
		return f
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil && !c.closed {
		f := os.NewFile(uintptr(c.fd), "") // non-blocking: Go's poller waits on it
		raw, _ := f.SyscallConn()          // an error only for a nil *os.File
		c.f, c.fraw = f, raw
	}
	return c.f
}

// Read reads into b, waiting for bytes in Go's poller.
func (c *Conn) Read(b []byte) (int, error) {
	f := c.file()
	if f == nil {
		return 0, c.opError("read", net.ErrClosed)
	}
	n, err := f.Read(b)
	if err == io.EOF {
		return n, io.EOF
	}
	return n, c.opError("read", err)
}

// Write writes b, waiting for room in Go's poller.
func (c *Conn) Write(b []byte) (int, error) {
	f := c.file()
	if f == nil {
		return 0, c.opError("write", net.ErrClosed)
	}
	n, err := f.Write(b)
	return n, c.opError("write", err)
}

// Close closes the socket once no raw call uses it.
func (c *Conn) Close() error {
	c.LocalAddr() // asked now, while there is a descriptor to ask: errors and logs after the close name it
	return c.opError("close", c.close())
}

func (c *Conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	if c.f != nil {
		return c.f.Close()
	}
	return errno(rawClose(c.fd))
}

// raw runs fn on the descriptor under the read lock, or says it is
// closed.
func (c *Conn) raw(op string, fn func(fd int) error) error {
	return c.opError(op, c.locked(fn))
}

func (c *Conn) locked(fn func(fd int) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return net.ErrClosed
	}
	return fn(c.fd)
}

// CloseWrite shuts the socket's write side: the peer reads EOF.
func (c *Conn) CloseWrite() error { return c.shutdown("shutdown", unix.SHUT_WR) }

// CloseRead shuts the socket's read side.
func (c *Conn) CloseRead() error { return c.shutdown("shutdown", unix.SHUT_RD) }

func (c *Conn) shutdown(op string, how int) error {
	return c.raw(op, func(fd int) error {
		if _, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0); e != 0 {
			return e
		}
		return nil
	})
}

// SetLinger sets SO_LINGER as *net.TCPConn's SetLinger does: 0 makes
// Close reset the connection (RST) rather than end it.
func (c *Conn) SetLinger(sec int) error {
	l := unix.Linger{}
	if sec >= 0 {
		l.Onoff, l.Linger = 1, int32(sec)
	}
	return c.raw("set", func(fd int) error { return setsockoptLinger(fd, &l) })
}

// SetNoDelay sets TCP_NODELAY.
func (c *Conn) SetNoDelay(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return c.raw("set", func(fd int) error { return setsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, v) })
}

// LocalAddr is the socket's own address, asked of the kernel the first
// time.
func (c *Conn) LocalAddr() net.Addr {
	c.lonce.Do(func() {
		c.mu.RLock()
		defer c.mu.RUnlock()
		if !c.closed {
			c.laddr = sockname(c.fd, unix.SYS_GETSOCKNAME)
		}
	})
	if c.laddr == nil {
		return (*net.TCPAddr)(nil)
	}
	return c.laddr
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr {
	if c.raddr == nil {
		return (*net.TCPAddr)(nil)
	}
	return c.raddr
}

// SetDeadline sets both deadlines (the Conn waits in Go's poller from
// then on).
func (c *Conn) SetDeadline(t time.Time) error {
	f := c.file()
	if f == nil {
		return c.opError("set", net.ErrClosed)
	}
	return c.opError("set", f.SetDeadline(t))
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	f := c.file()
	if f == nil {
		return c.opError("set", net.ErrClosed)
	}
	return c.opError("set", f.SetReadDeadline(t))
}

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	f := c.file()
	if f == nil {
		return c.opError("set", net.ErrClosed)
	}
	return c.opError("set", f.SetWriteDeadline(t))
}

// SyscallConn gives the descriptor to raw calls: Control, Read and Write
// run their function on it at once, and a Read or Write whose function
// returns false waits in Go's poller and runs it again, as net's do.
// Unlike net's, the function runs under the Conn's read lock: it must not
// call the Conn's own methods (a Close waiting for the lock would leave
// both waiting).
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return rawConn{c}, nil }

// rawConn is a Conn's syscall.RawConn.
type rawConn struct{ c *Conn }

// Control runs fn on the descriptor.
func (r rawConn) Control(fn func(fd uintptr)) error {
	c := r.c
	c.mu.RLock()
	if c.f != nil {
		c.mu.RUnlock()
		return c.closedErr(c.fraw.Control(fn))
	}
	defer c.mu.RUnlock()
	if c.closed {
		return net.ErrClosed
	}
	fn(uintptr(c.fd))
	return nil
}

// Read runs fn until it returns true, waiting for the socket to be
// readable between two runs.
func (r rawConn) Read(fn func(fd uintptr) bool) error {
	return r.run(fn, false)
}

// Write runs fn until it returns true, waiting for the socket to be
// writable between two runs.
func (r rawConn) Write(fn func(fd uintptr) bool) error {
	return r.run(fn, true)
}

func (r rawConn) run(fn func(fd uintptr) bool, write bool) error {
	c := r.c
	c.mu.RLock()
	if c.f == nil {
		if c.closed {
			c.mu.RUnlock()
			return net.ErrClosed
		}
		done := fn(uintptr(c.fd))
		c.mu.RUnlock()
		if done {
			return nil
		}
		if c.file() == nil {
			return net.ErrClosed
		}
	} else {
		c.mu.RUnlock()
	}
	if write {
		return c.closedErr(c.fraw.Write(fn))
	}
	return c.closedErr(c.fraw.Read(fn))
}

// closedErr is err from the file's raw calls, net.ErrClosed when the
// Conn was closed (the file says "use of closed file", which is neither
// net's nor os's ErrClosed), as a raw call before the move says.
func (c *Conn) closedErr(err error) error {
	if err == nil {
		return nil
	}
	c.mu.RLock()
	closed := c.closed
	c.mu.RUnlock()
	if closed {
		return net.ErrClosed
	}
	return err
}

// WriteBuffers writes all of bufs, in order, with writev calls, waiting
// for room in Go's poller, as a *net.TCPConn's WriteTo of net.Buffers
// does (for a type of another package net.Buffers makes one write per
// buffer). It may change bufs' elements; it returns how many bytes it
// wrote.
func (c *Conn) WriteBuffers(bufs [][]byte) (int, error) {
	if c.file() == nil {
		return 0, c.opError("writev", net.ErrClosed)
	}
	var (
		total int
		werr  error
	)
	err := c.fraw.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			n, e := writev(int(fd), bufs)
			total += n
			bufs = consume(bufs, n)
			switch e {
			case 0:
			case unix.EINTR:
			case unix.EAGAIN:
				return false // wait for room
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return total, c.opError("writev", c.closedErr(err))
	}
	return total, nil
}

// consume drops n written bytes from the front of bufs, and the empty
// buffers there, and returns what is left.
func consume(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 {
		if len(bufs[0]) > n {
			bufs[0] = bufs[0][n:]
			return bufs
		}
		n -= len(bufs[0])
		bufs[0] = nil
		bufs = bufs[1:]
	}
	return bufs
}
