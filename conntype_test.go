package sockmux_test

import (
	"io"
	"net"
	"testing"
)

// mapConn is a net.Conn whose type cannot be a map key: a struct value
// holding a map, as a caller's own connection type may be.
type mapConn struct {
	net.Conn
	tags map[string]string
}

// TestCarrierOfAnyType: Client and Server take a carrier connection of
// any type, one that cannot be a map key included, and carry a stream
// over it.
func TestCarrierOfAnyType(t *testing.T) {
	a, b := net.Pipe()
	pair := func(testing.TB) (net.Conn, net.Conn) {
		return mapConn{Conn: a, tags: map[string]string{}}, mapConn{Conn: b, tags: map[string]string{}}
	}
	client, server := sessions(t, pair, nil, nil)
	opened, accepted := streamPair(t, client, server, "any:1")
	go func() {
		opened.Write([]byte("hello"))
		opened.CloseWrite()
	}()
	got, err := io.ReadAll(accepted)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v; want hello", got, err)
	}
}
