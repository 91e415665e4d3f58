package actors

import (
	"net"
	"net/netip"
	"testing"
)

// TestListensOn: which stream targets a listener's address takes for a
// splice: its own address, and loopback or the unspecified address on
// its port when it listens on all addresses; nothing else.
func TestListensOn(t *testing.T) {
	for _, tc := range []struct {
		ln, target string
		want       bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "127.0.0.1:8081", false},
		{"127.0.0.1:8080", "127.0.0.2:8080", false},
		{"0.0.0.0:8080", "127.0.0.1:8080", true},
		{"0.0.0.0:8080", "0.0.0.0:8080", true},
		{"0.0.0.0:8080", "10.0.0.1:8080", false},
		{"[::]:8080", "[::1]:8080", true},
		{"[::]:8080", "127.0.0.1:8080", true},
		{"10.0.0.1:8080", "[::ffff:10.0.0.1]:8080", true},
	} {
		ln := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tc.ln))
		if got := listensOn(ln, netip.MustParseAddrPort(tc.target)); got != tc.want {
			t.Errorf("a listener on %s takes %s: %v, want %v", tc.ln, tc.target, got, tc.want)
		}
	}
}
