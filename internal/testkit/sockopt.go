package testkit

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// SetRecvBuffer sets the receive buffer (SO_RCVBUF) of the socket rc to n
// bytes; as a net.Dialer's Control it does so before the connection's SYN,
// which fixes its window scale.
func SetRecvBuffer(rc syscall.RawConn, n int) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(sockFD(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
	})
	return errors.Join(err, serr)
}

// RecvBufferDialer dials connections with an n-byte receive buffer.
func RecvBufferDialer(n int) *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error { return SetRecvBuffer(rc, n) }}
}

// NoDelay says whether c has TCP_NODELAY set (Nagle off).
func NoDelay(t testing.TB, c *net.TCPConn) bool {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(sockFD(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return v != 0
}
