//go:build !unix

package main

import "testing"

// sendHUP: there is no SIGHUP to send a process here, so a test of what a
// reload signal does is skipped.
func sendHUP(t testing.TB) {
	t.Helper()
	t.Skip("no SIGHUP on this OS")
}
