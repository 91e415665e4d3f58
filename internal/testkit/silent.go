package testkit

import (
	"net"
	"testing"
)

// SilentConns opens n TCP connections to addr that never send a byte, as
// a slowloris does; t.Cleanup closes them.
func SilentConns(t testing.TB, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("silent connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns
}
