//go:build unix

package preauth

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sentSomething reports whether c's peer has bytes waiting in the socket
// that the handshake has not read yet: such a connection is not silent,
// only not served yet (a burst of peers dialling at once), and is not the
// one to evict.
func sentSomething(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	var b [1]byte
	if rc.Control(func(fd uintptr) { n, _, _ = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT) }) != nil {
		return false
	}
	return n > 0
}
