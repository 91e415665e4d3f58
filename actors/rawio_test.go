package actors

import (
	"net"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// Portable runs the rest of the test on the portable I/O path, the one
// Windows runs (rawIO false): every connection made meanwhile is read by a
// goroutine of its own and written with Write, with no raw descriptor and
// no poller. (For the end-to-end tests, in package actors_test.)
func Portable(t testing.TB) {
	t.Helper()
	portableIO.Store(true)
	t.Cleanup(func() { portableIO.Store(false) })
}

// TestRawConnChoice: a TCP socket has the raw path, unless the portable
// one is asked for; a connection with no descriptor never has it.
func TestRawConnChoice(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	tcp, err := net.Dial("tcp", testkit.Echo(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	if rawConn(tcp) == nil {
		t.Fatal("a TCP connection has no raw descriptor")
	}
	if rawConn(a) != nil {
		t.Fatal("net.Pipe has a raw descriptor")
	}
	if newRawSource(tcp) == nil || newFrameQueue(tcp, 1).raw == nil {
		t.Fatal("a TCP carrier does not take the raw path")
	}
	Portable(t)
	if rawConn(tcp) != nil || newRawSource(tcp) != nil || newFrameQueue(tcp, 1).raw != nil || newSockReader(tcp).raw != nil {
		t.Fatal("asked for the portable path, a TCP connection still has the raw one")
	}
}
