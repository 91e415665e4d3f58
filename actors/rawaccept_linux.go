package actors

import (
	"net"

	"github.com/sockmux/sockmux/internal/rawsock"
)

// rawAccepting gives a forward's TCP listener raw accepts
// (rawsock.Listener): its connections are *rawsock.Conn, whose accept,
// options, shutdown and close make no system call the usual way, so a
// new connection does not wake the runtime's sysmon (BENCHMARKS.md, "A new
// connection without Go's net"). Any other listener, or the portable path
// a test asked for, is ln itself.
func rawAccepting(ln net.Listener) net.Listener {
	if portableIO.Load() {
		return ln
	}
	if rl, err := rawsock.NewListener(ln); err == nil {
		return rl
	}
	return ln
}

// isRawSock says whether conn is a *rawsock.Conn.
func isRawSock(conn net.Conn) bool {
	_, ok := conn.(*rawsock.Conn)
	return ok
}
