//go:build unix

package main

import "syscall"

// backgroundAvailable: a -f child is a re-exec handed a pipe as fd 3.
func backgroundAvailable() error { return nil }

// newSession puts a -f child in a session of its own (setsid), with no
// controlling terminal: the terminal's hangup does not reach it.
func newSession() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
