//go:build unix && !(linux || darwin || openbsd || illumos || freebsd || netbsd || dragonfly)

package actors

import "syscall"

// readv and writev where neither golang.org/x/sys nor a system call
// number gives them: one read or write of the first buffer that is not
// empty, which is what a short readv or writev gives, and the callers
// take.

func readv(fd int, bs [][]byte) (int, error) {
	for _, b := range bs {
		if len(b) > 0 {
			return syscall.Read(fd, b)
		}
	}
	return 0, nil
}

func writev(fd int, bs [][]byte) (int, error) {
	for _, b := range bs {
		if len(b) > 0 {
			return syscall.Write(fd, b)
		}
	}
	return 0, nil
}
