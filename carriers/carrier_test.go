package carriers

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

func TestAddresses(t *testing.T) {
	cases := []struct {
		addr string
		want error // nil: NewDialer accepts it
	}{
		{"127.0.0.1:9000", nil},
		{"tcp://127.0.0.1:9000", nil},
		{"[::1]:9000", nil},
		{"tcp://localhost:0", nil},
		{"nocolon", ErrBadAddress},
		{"tcp://", ErrBadAddress},
		{"tcp://host:", ErrBadAddress},
		{"127.0.0.1:99999", ErrBadAddress},
		{"tcp://127.0.0.1:abc", ErrBadAddress},
		{"quic://127.0.0.1:-1", ErrBadAddress},
		{"ws://127.0.0.1:70000/t", ErrBadAddress},
		{"udp://127.0.0.1:9000", ErrBadAddress},
		{"tls://127.0.0.1", ErrBadAddress},
		{"tls://127.0.0.1:9000", ErrTLSConfig}, // neither a CA nor a fingerprint
		{"ws://127.0.0.1:9000/tunnel", nil},
		{"wss://127.0.0.1:9000/tunnel", nil}, // the system's roots
		{"ws://127.0.0.1:9000/x?y", ErrBadAddress},
		{"quic://127.0.0.1:9000", ErrTLSConfig}, // neither a CA nor a fingerprint
		{"quic://127.0.0.1", ErrBadAddress},
		{"fifo:/tmp/a,/tmp/b", nil},
		{"fifo:/tmp/a", ErrBadAddress},
		{"fifo:/tmp/a,", ErrBadAddress},
		{"fifo:/tmp/a,/tmp/b,/tmp/c", ErrBadAddress},
		{"fifo:/tmp/a,/tmp/a", ErrBadAddress},
		{"comm:/dev/ttyS0", nil},
		{"comm:", ErrBadAddress},
		{"exec:ssh host sockmux stdio", nil},
		{"exec:", ErrBadAddress},
		{"exec:   ", ErrBadAddress},
		{"stdio", ErrBadAddress}, // served by the stdio command, not dialled
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			_, err := NewDialer(tc.addr)
			if tc.want == nil && err != nil {
				t.Fatalf("NewDialer: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("NewDialer: err %v, want %v", err, tc.want)
			}
		})
	}
}

// TestListenRefuses: addresses Listen cannot serve say why.
func TestListenRefuses(t *testing.T) {
	cases := []struct {
		addr, says string
	}{
		{"exec:cat", "dial-only"},
		{"stdio", "no listener"},
		{"udp://127.0.0.1:0", "unknown scheme"},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			ln, err := Listen(tc.addr)
			if err == nil {
				ln.Close()
				t.Fatal("Listen succeeded")
			}
			if !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Listen: %v, want ErrBadAddress saying %q", err, tc.says)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	cases := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9000", true},
		{"tcp://127.0.0.2:9000", true},
		{"tls://[::1]:9000", true},
		{"localhost:9000", true},
		{"tls://LocalHost:9000", true},
		{"ws://127.0.0.1:9000/tunnel", true},
		{"wss://localhost/tunnel", true},
		{"ws://0.0.0.0:9000/", false},
		{"wss://example.com/tunnel", false},
		{"quic://[::1]:9000", true},
		{"quic://localhost:9000", true},
		{"quic://0.0.0.0:9000", false},
		{":9000", false},
		{"0.0.0.0:9000", false},
		{"[::]:9000", false},
		{"10.1.2.3:9000", false},
		{"example.com:9000", false},
		{"fifo:/tmp/a,/tmp/b", true},
		{"comm:/dev/ttyS0", true},
		{"exec:ssh host sockmux stdio", true},
		{"stdio", true},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := IsLoopback(tc.addr)
			if err != nil || got != tc.want {
				t.Fatalf("IsLoopback = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := IsLoopback("nocolon"); !errors.Is(err, ErrBadAddress) {
		t.Fatalf("IsLoopback(nocolon): %v, want ErrBadAddress", err)
	}
}

// TestTCPNoDelay: both ends of a TCP carrier have Nagle off.
func TestTCPNoDelay(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	c, s := dialPair(t, ln, mustDialer(t, "tcp://"+ln.Addr().String()))
	for name, conn := range map[string]net.Conn{"dialled": c, "accepted": s} {
		if !noDelay(t, conn) {
			t.Errorf("%s carrier has Nagle on", name)
		}
	}
}

func noDelay(t testing.TB, c net.Conn) bool {
	t.Helper()
	return testkit.NoDelay(t, c.(*net.TCPConn))
}

// TestDialCancelled: a dial whose context is already done fails with the
// context's error, whatever the kind.
func TestDialCancelled(t *testing.T) {
	dir := shortTempDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, addr := range []string{
		"fifo:" + dir + "/a," + dir + "/b",
		"exec:cat",
		"tcp://127.0.0.1:1",
		"ws://127.0.0.1:1/x",
		"wss://127.0.0.1:1/x",
		"quic://127.0.0.1:1",
	} {
		t.Run(addr, func(t *testing.T) {
			c, err := mustDialer(t, addr, WithTLS(TLSConfig{Fingerprint: strings.Repeat("ab", 32)})).Dial(ctx)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Dial: %v, want context.Canceled", err)
			}
		})
	}
}
