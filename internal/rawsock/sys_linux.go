//go:build linux

package rawsock

// The raw system calls (unix.RawSyscall: no word to the scheduler, so no
// sysmon wake-up; none of them blocks on a non-blocking socket) and the
// socket addresses they take and give.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func errno(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func rawClose(fd int) syscall.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return e
}

// writev writes the first 64 non-empty buffers of bs with one raw writev.
func writev(fd int, bs [][]byte) (int, syscall.Errno) {
	var iov [64]unix.Iovec
	vs := iov[:0]
	for _, b := range bs {
		if len(b) == 0 {
			continue
		}
		if len(vs) == cap(iov) {
			break
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vs[0])), uintptr(len(vs)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

func setsockoptInt(fd, level, opt, v int) error {
	iv := int32(v)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&iv)), unsafe.Sizeof(iv), 0)
	return errno(e)
}

func setsockoptLinger(fd int, l *unix.Linger) error {
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_LINGER,
		uintptr(unsafe.Pointer(l)), unsafe.Sizeof(*l), 0)
	return errno(e)
}

// getsockoptInt reads an int option of fd with a raw call.
func getsockoptInt(fd, level, opt int) (int, error) {
	var v int32
	l := uint32(unsafe.Sizeof(v))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
	return int(v), errno(e)
}

// keepAlive is the keepalive Go's net gives the TCP connections it
// accepts and dials by default (net.ListenConfig, net.Dialer): probes
// after 15 s idle, every 15 s, 9 of them.
const keepAlive = 15

// tune sets on fd, a TCP socket, what Go's net sets on a connection it
// accepts or dials: TCP_NODELAY, and keepalive every keepAlive seconds
// unless loopback says the peer is this host (whose kernel resets its
// connections when it goes: no probe can find one silently gone).
func tune(fd int, loopback bool) error {
	if err := setsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil || loopback {
		return err
	}
	for _, o := range [...]struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAlive},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAlive},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9},
	} {
		if err := setsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return err
		}
	}
	return nil
}

// sockname asks the kernel for fd's own (SYS_GETSOCKNAME) or its peer's
// (SYS_GETPEERNAME) address; nil if it cannot say.
func sockname(fd int, call uintptr) net.Addr {
	var rsa unix.RawSockaddrAny
	l := uint32(unsafe.Sizeof(rsa))
	if _, _, e := unix.RawSyscall(call, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l))); e != 0 {
		return nil
	}
	return tcpAddr(&rsa)
}

// tcpAddr reads an AF_INET or AF_INET6 socket address as a *net.TCPAddr;
// nil for any other family.
func tcpAddr(rsa *unix.RawSockaddrAny) net.Addr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port))
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		a := netip.AddrFrom16(p.Addr)
		if p.Scope_id != 0 {
			// The zone's index, not its name: the name is a netlink dump
			// away, too dear for every accept (Go's net caches it).
			a = a.WithZone(uitoa(p.Scope_id))
		}
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, port))
	}
	return nil
}

func uitoa(v uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
