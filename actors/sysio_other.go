//go:build unix && !linux

package actors

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// The data path's system calls (sysio_linux.go makes them raw).

// rawIO: sockets are non-blocking descriptors that read(2) takes.
const rawIO = true

func sysRead(fd int, p []byte) (int, error)      { return syscall.Read(fd, p) }
func sysWrite(fd int, p []byte) (int, error)     { return syscall.Write(fd, p) }
func sysReadv(fd int, bs [][]byte) (int, error)  { return readv(fd, bs) }
func sysWritev(fd int, bs [][]byte) (int, error) { return writev(fd, bs) }

func sysPeek(fd int) error {
	var b [1]byte
	_, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err
}
