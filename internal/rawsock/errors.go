//go:build linux

package rawsock

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// ErrNotTCP is returned by NewListener for a listener that is not a
// *net.TCPListener: only TCP sockets are accepted raw.
var ErrNotTCP = errors.New("rawsock: not a TCP listener")

// opError wraps err from op on c as net's own errors are, with
// net.ErrClosed for a closed file, so callers' errors.Is checks see what
// they would see from a *net.TCPConn.
func (c *Conn) opError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrClosed) {
		err = net.ErrClosed
	} else if pe, ok := err.(*os.PathError); ok {
		err = pe.Err // os.ErrDeadlineExceeded (a net.Error with Timeout) or an errno
	}
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
