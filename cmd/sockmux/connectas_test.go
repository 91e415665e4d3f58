//go:build linux

package main

import (
	"net"
	"syscall"
)

// syscallConnectAs connects to a unix socket with the effective user id
// uid, in a locked thread, to see what another user would get.
func syscallConnectAs(path string, uid int) (net.Conn, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	errc := make(chan error, 1)
	go func() {
		// A thread of its own, never returned to the pool: its ids change.
		runtimeLockOSThread()
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			errc <- e
			return
		}
		errc <- syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
	}()
	return nil, <-errc
}
