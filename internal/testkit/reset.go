package testkit

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// DialClosed connects to addr and returns how the connection ended
// without a byte read: the error of a dial that a reset beat (a refused
// stream is reset at once, sometimes before the dial has returned), or
// that of the first read. It fails the test if a byte arrives or the
// connection stays open for 10 s.
func DialClosed(t testing.TB, addr string) error {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		if isReset(err) {
			return err
		}
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
	n, err := c.Read(make([]byte, 1))
	if n != 0 {
		t.Fatalf("read %d bytes from %s, want it closed", n, addr)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s still open after 10 s", addr)
	}
	return err
}

// IsReset reports whether err is a connection reset.
func IsReset(err error) bool { return isReset(err) }

// WantErr fails tb unless err matches want with errors.Is; a nil want
// means no error is expected. (Package engine's own tests, which testkit
// cannot serve without an import cycle, keep a copy.)
func WantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	switch {
	case want == nil && err != nil:
		tb.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && err == nil:
		tb.Fatalf("%s: no error, want %v", what, want)
	case want != nil && !errors.Is(err, want):
		tb.Fatalf("%s: error %v, want one matching %v", what, err, want)
	}
}
