package actors

import (
	"net"
	"net/netip"

	"github.com/sockmux/sockmux/internal/rawsock"
)

// dialNow connects to target, a TCP address on this host's loopback given
// as an IP and port, without waiting (rawsock.ConnectNow): the kernel
// answers a loopback SYN within the connect call, so the stream's first
// bytes go out in the same mailbox run that took the peer's OPEN, where a
// dialling goroutine, its wait in Go's poller and its report back cost a
// new connection's first answer about a tenth of a millisecond
// (BENCHMARKS.md). The connection is a *rawsock.Conn: its options,
// shutdown and close are raw calls too. ok is false when it cannot
// (another target, a connect still under way); the caller then dials the
// usual way. A refused connect is err.
func dialNow(target string) (conn net.Conn, err error, ok bool) {
	ap, perr := netip.ParseAddrPort(target)
	if perr != nil {
		return nil, nil, false
	}
	c, err, ok := rawsock.ConnectNow(ap)
	if !ok || err != nil {
		return nil, err, ok
	}
	return c, nil, true
}
