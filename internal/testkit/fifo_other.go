//go:build !unix

package testkit

import "testing"

// Mkfifo: no POSIX named pipes on this OS (carriers.ErrUnsupported), so a
// test that needs them is skipped.
func Mkfifo(t testing.TB, _ ...string) {
	t.Helper()
	t.Skip("no POSIX named pipes on this OS")
}
