//go:build !linux

package bench

import (
	"fmt"
	"net"
)

// SetCongestion is Linux's TCP_CONGESTION; elsewhere it says so.
func SetCongestion(_ net.Conn, algo string) error {
	return fmt.Errorf("%w: choosing congestion control %s is Linux only here", ErrUnsupported, algo)
}

// TCPCongestion is the host's default TCP congestion control, where known.
func TCPCongestion() string { return "unknown" }
