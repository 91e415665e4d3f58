//go:build unix

package main

import (
	"os"
	"syscall"
	"testing"
)

// sendHUP sends this process SIGHUP, as an operator's reload would.
func sendHUP(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
