package bench

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// SetCongestion switches a TCP connection's congestion control to algo
// (TCP_CONGESTION; "cubic", "bbr", "reno"), so that a benchmark compares
// carriers under the algorithm it names rather than the host's default.
func SetCongestion(c net.Conn, algo string) error {
	sc, ok := c.(syscall.Conn) // a *net.TCPConn, or a carrier's wrapping of one
	if !ok {
		return fmt.Errorf("%w: congestion control %s: %T has no socket", ErrUnsupported, algo, c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, algo)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("congestion control %s: %w", algo, serr)
	}
	return nil
}

// TCPCongestion is the host's default TCP congestion control (what a new
// network namespace starts with too).
func TCPCongestion() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
