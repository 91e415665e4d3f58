//go:build unix

package testkit

import (
	"syscall"
	"testing"
)

// Mkfifo makes each path a named pipe (mode 0600).
func Mkfifo(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
