package actors

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The data path's system calls on non-blocking sockets and on the
// poller's epoll set, made with RawSyscall: without telling Go's
// scheduler, which is right for a call that never blocks. A call made the
// usual way (entersyscall) wakes the runtime's sysmon thread whenever it
// sleeps, which it does each time the process goes idle, and sysmon then
// ticks every 20 µs until it sleeps again: for a request at a time, two
// or three more thread wake-ups per message than the message itself, and
// a third of the process's CPU (BENCHMARKS.md, "Where a round trip
// goes"). A call that may copy a lot (a 256 KiB writev) keeps its
// processor that long, as any Go code would.

// rawIO: sockets are non-blocking descriptors that read(2) takes.
const rawIO = true

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// sysRead reads fd into p.
func sysRead(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// sysWrite writes p to fd.
func sysWrite(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// sysReadv reads fd into bs with one readv.
func sysReadv(fd int, bs [][]byte) (int, error) {
	var spare [readFrames]unix.Iovec
	vs := iovecs(spare[:0], bs)
	if len(vs) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&vs[0])), uintptr(len(vs)))
	clear(vs)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// sysWritev writes bs to fd with one writev.
func sysWritev(fd int, bs [][]byte) (int, error) {
	var spare [16]unix.Iovec
	vs := iovecs(spare[:0], bs)
	if len(vs) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vs[0])), uintptr(len(vs)))
	clear(vs)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// sysPeek peeks at one byte of fd without waiting.
func sysPeek(fd int) error {
	var b [1]byte
	_, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return errnoErr(e)
}

// sysEpollWait collects epfd's events without waiting.
func sysEpollWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// sysEpollCtl adds, changes or removes fd in epfd's set (never waits).
func sysEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(e)
}
