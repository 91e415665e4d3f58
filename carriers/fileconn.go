package carriers

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"
)

// fileAddr is the net.Addr of a carrier made of files.
type fileAddr struct{ kind, name string }

func (a fileAddr) Network() string { return a.kind }
func (a fileAddr) String() string  { return a.kind + ":" + a.name }

// fileConn is a net.Conn over a file it reads and a file it writes: a pair
// of named pipes, a command's stdout and stdin, two pipes, or one device
// opened once for both (r == w). Deadlines work when the files are in the
// runtime poller (pipes, FIFOs and ttys opened by os.OpenFile or os.Pipe
// are), and Close then unblocks a pending Read or Write.
type fileConn struct {
	r, w         *os.File
	laddr, raddr net.Addr

	// beforeClose, when set, runs once on Close before the files are
	// closed; cleanup, when set, runs once after.
	beforeClose func()
	cleanup     func() error

	closeOnce  sync.Once
	closeErr   error
	closeWOnce sync.Once
	closeWErr  error
}

func newFileConn(r, w *os.File, laddr, raddr net.Addr) *fileConn {
	return &fileConn{r: r, w: w, laddr: laddr, raddr: raddr}
}

// Read reads from the read file; the end of it is a bare io.EOF.
func (c *fileConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

// Write writes all of b to the write file unless a deadline or Close stops
// it first.
func (c *fileConn) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// Close closes both files, which unblocks a pending Read or Write, then
// runs the cleanup.
func (c *fileConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		if c.beforeClose != nil {
			c.beforeClose()
		}
		err := c.r.Close()
		if c.w != c.r {
			if e := c.closeWrite(); err == nil && !errors.Is(e, fs.ErrClosed) {
				err = e
			}
		}
		if c.cleanup != nil {
			if e := c.cleanup(); err == nil {
				err = e
			}
		}
		if err != nil {
			c.closeErr = c.opError("close", err)
		}
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	return c.closeErr
}

// CloseWrite closes the write file: the peer reads EOF. A device opened
// once for both directions cannot be half-closed.
func (c *fileConn) CloseWrite() error {
	if c.w == c.r {
		return c.opError("close", errors.ErrUnsupported)
	}
	if err := c.closeWrite(); err != nil {
		return c.opError("close", err)
	}
	return nil
}

func (c *fileConn) closeWrite() error {
	c.closeWOnce.Do(func() { c.closeWErr = c.w.Close() })
	return c.closeWErr
}

// LocalAddr names this end.
func (c *fileConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr names the peer.
func (c *fileConn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets both deadlines; it fails on files that have none
// (regular files, blocking descriptors).
func (c *fileConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline bounds pending and future Reads.
func (c *fileConn) SetReadDeadline(t time.Time) error {
	if err := c.r.SetReadDeadline(t); err != nil {
		return c.opError("set", err)
	}
	return nil
}

// SetWriteDeadline bounds pending and future Writes.
func (c *fileConn) SetWriteDeadline(t time.Time) error {
	if err := c.w.SetWriteDeadline(t); err != nil {
		return c.opError("set", err)
	}
	return nil
}

// opError dresses an os.File error as the *net.OpError a net.Conn returns,
// so that timeouts are net.Errors with Timeout() and a closed conn is
// net.ErrClosed.
func (c *fileConn) opError(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrClosed) {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: c.laddr.Network(), Source: c.laddr, Addr: c.raddr, Err: err}
}
