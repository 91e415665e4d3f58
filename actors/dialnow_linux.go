package actors

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dialNow connects to target, a TCP address on this host's loopback given
// as an IP and port, without waiting: the kernel answers a loopback SYN
// within the connect call, so a non-blocking connect has completed when
// it returns, and the stream's first bytes go out in the same mailbox run
// that took the peer's OPEN, where a dialling goroutine, its wait in Go's
// poller and its report back cost a new connection's first answer about
// a tenth of a millisecond (BENCHMARKS.md). ok is false when it cannot
// (another target, a connect still under way); the caller then dials the
// usual way. A refused connect is err.
func dialNow(target string) (conn net.Conn, err error, ok bool) {
	ap, perr := netip.ParseAddrPort(target)
	if perr != nil || !ap.Addr().Unmap().IsLoopback() {
		return nil, nil, false
	}
	addr := ap.Addr().Unmap()
	var (
		domain = unix.AF_INET
		sa     unix.Sockaddr
	)
	if addr.Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: addr.As4()}
	} else {
		domain = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: addr.As16()}
	}
	// Raw calls, as on the data path (sysio_linux.go): none of them waits.
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(domain), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return nil, nil, false
	}
	fd := int(r)
	switch cerr := rawConnect(fd, sa); cerr {
	case nil:
	case unix.EINPROGRESS:
		if !writableNow(fd) {
			unix.Close(fd)
			return nil, nil, false
		}
		if soerr, gerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); gerr != nil || soerr != 0 {
			unix.Close(fd)
			if gerr == nil {
				gerr = syscall.Errno(soerr)
			}
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError("connect", gerr)}, true
		}
	default:
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError("connect", cerr)}, true
	}
	f := os.NewFile(uintptr(fd), "")
	conn, ferr := net.FileConn(f) // a *net.TCPConn of its own, with TCP_NODELAY and keepalive as Dial sets them
	f.Close()
	if ferr != nil {
		return nil, nil, false
	}
	return conn, nil, true
}

// rawConnect starts a non-blocking connect of fd to sa, an
// *unix.SockaddrInet4 or *unix.SockaddrInet6.
func rawConnect(fd int, sa unix.Sockaddr) error {
	var (
		ptr unsafe.Pointer
		n   uintptr
	)
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		raw := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Addr}
		p := (*[2]byte)(unsafe.Pointer(&raw.Port))
		p[0], p[1] = byte(a.Port>>8), byte(a.Port)
		ptr, n = unsafe.Pointer(&raw), unix.SizeofSockaddrInet4
		_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(ptr), n)
		return errnoErr(e)
	case *unix.SockaddrInet6:
		raw := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.Addr}
		p := (*[2]byte)(unsafe.Pointer(&raw.Port))
		p[0], p[1] = byte(a.Port>>8), byte(a.Port)
		ptr, n = unsafe.Pointer(&raw), unix.SizeofSockaddrInet6
		_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(ptr), n)
		return errnoErr(e)
	}
	return unix.EAFNOSUPPORT
}

// writableNow says whether fd can be written, without waiting: a
// non-blocking connect has completed.
func writableNow(fd int) bool {
	pfd := unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	var ts unix.Timespec
	n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return e == 0 && n == 1 && pfd.Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0
}
