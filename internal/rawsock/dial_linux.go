//go:build linux

package rawsock

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ConnectNow connects to ap, a TCP address on this host's loopback,
// without waiting: the kernel answers a loopback SYN within the connect
// call, so a non-blocking connect has completed when it returns. ok is
// false when it cannot (not a loopback address, a connect still under
// way, no socket to be had); the caller then dials the usual way. A
// refused connect is err, a *net.OpError as net.Dial gives.
func ConnectNow(ap netip.AddrPort) (conn *Conn, err error, ok bool) {
	addr := ap.Addr().Unmap()
	if !addr.IsLoopback() {
		return nil, nil, false
	}
	var (
		domain = unix.AF_INET
		ptr    unsafe.Pointer
		n      uintptr
		raw4   unix.RawSockaddrInet4
		raw6   unix.RawSockaddrInet6
	)
	if addr.Is4() {
		raw4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: addr.As4()}
		putPort(&raw4.Port, ap.Port())
		ptr, n = unsafe.Pointer(&raw4), unix.SizeofSockaddrInet4
	} else {
		domain = unix.AF_INET6
		raw6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: addr.As16()}
		putPort(&raw6.Port, ap.Port())
		ptr, n = unsafe.Pointer(&raw6), unix.SizeofSockaddrInet6
	}
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(domain), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return nil, nil, false
	}
	fd := int(r)
	fail := func(call string, e error) (*Conn, error, bool) {
		rawClose(fd)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError(call, e)}, true
	}
	_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(ptr), n)
	switch e {
	case 0:
	case unix.EINPROGRESS:
		if !writableNow(fd) {
			rawClose(fd)
			return nil, nil, false
		}
		soerr, gerr := getsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if gerr != nil {
			return fail("getsockopt", gerr)
		}
		if soerr != 0 {
			return fail("connect", syscall.Errno(soerr))
		}
	default:
		return fail("connect", e)
	}
	if err := tune(fd, true); err != nil {
		return fail("setsockopt", err)
	}
	return New(fd, net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, ap.Port()))), nil, true
}

// putPort writes port into a raw socket address's port, in network order.
func putPort(dst *uint16, port uint16) {
	p := (*[2]byte)(unsafe.Pointer(dst))
	p[0], p[1] = byte(port>>8), byte(port)
}

// writableNow says whether fd can be written, without waiting: a
// non-blocking connect has completed.
func writableNow(fd int) bool {
	pfd := unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	var ts unix.Timespec
	n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return e == 0 && n == 1 && pfd.Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0
}
