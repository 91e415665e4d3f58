package carriers

import (
	"errors"
	"net"
	"syscall"
)

// socketBuffers reads udp's receive and send buffer sizes, as the kernel
// reports them (Linux doubles what was asked, for its bookkeeping, as
// quic-go's own check counts it too).
func socketBuffers(udp *net.UDPConn) (rcv, snd int, err error) {
	raw, err := udp.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var rerr, serr error
	if err := raw.Control(func(fd uintptr) {
		rcv, rerr = syscall.GetsockoptInt(sockFD(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		snd, serr = syscall.GetsockoptInt(sockFD(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil {
		return 0, 0, err
	}
	return rcv, snd, errors.Join(rerr, serr)
}
