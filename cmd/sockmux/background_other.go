//go:build !unix

package main

import "syscall"

// backgroundAvailable: a -f child tells its parent it is ready on an
// inherited descriptor (exec.Cmd.ExtraFiles), which Windows does not
// hand over; run sockmux as a service there instead.
func backgroundAvailable() error {
	return unsupported("going to the background (-f: the child reports on an inherited descriptor)")
}

func newSession() *syscall.SysProcAttr { return nil }
