//go:build freebsd || netbsd || dragonfly

package actors

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// readv and writev as system calls: golang.org/x/sys has no wrapper for
// them here.

func readv(fd int, bs [][]byte) (int, error) { return vectored(unix.SYS_READV, fd, bs) }

func writev(fd int, bs [][]byte) (int, error) { return vectored(unix.SYS_WRITEV, fd, bs) }

func vectored(trap uintptr, fd int, bs [][]byte) (int, error) {
	var spare [16]unix.Iovec
	vs := iovecs(spare[:0], bs)
	if len(vs) == 0 {
		return 0, nil
	}
	n, _, e := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&vs[0])), uintptr(len(vs)))
	clear(vs)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
