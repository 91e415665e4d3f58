//go:build darwin || openbsd || illumos

package actors

import "golang.org/x/sys/unix"

// readv and writev of golang.org/x/sys, which has them here.

func readv(fd int, bs [][]byte) (int, error)  { return unix.Readv(fd, bs) }
func writev(fd int, bs [][]byte) (int, error) { return unix.Writev(fd, bs) }
