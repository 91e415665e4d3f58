package testkit

import "syscall"

// sockFD is a RawConn's descriptor as syscall's socket calls take it: a
// SOCKET handle.
func sockFD(fd uintptr) syscall.Handle { return syscall.Handle(fd) }
