//go:build linux

package carriers

import (
	"net"
	"os"
	"testing"

	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

// TestStdioConn: two Stdio conns over two pipes are a net.Conn pair, both
// on pipes Go polls (os.Pipe) and on blocking ones (as os.Stdin is), which
// Stdio duplicates into non-blocking mode.
func TestStdioConn(t *testing.T) {
	cases := []struct {
		name string
		pipe func(t testing.TB) (r, w *os.File)
	}{
		{"os.Pipe", osPipe},
		{"blocking", blockingPipe},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				r1, w1 := tc.pipe(t)
				r2, w2 := tc.pipe(t)
				c1, c2 = Stdio(r1, w2), Stdio(r2, w1)
				return c1, c2, func() { c1.Close(); c2.Close() }, nil
			})
		})
	}
}

func osPipe(t testing.TB) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// blockingPipe is a pipe whose ends are blocking descriptors, which the
// runtime does not poll.
func blockingPipe(t testing.TB) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	t.Cleanup(func() { r.Close(); w.Close() })
	if r.SetReadDeadline(noDeadline) == nil {
		t.Fatal("a blocking pipe has deadlines: the test does not test the duplicate")
	}
	return r, w
}

// TestStdioRestoresBlocking: the pipe Stdio put in non-blocking mode is
// given back in blocking mode (the file description is shared with
// whoever started us).
func TestStdioRestoresBlocking(t *testing.T) {
	r1, w1 := blockingPipe(t)
	r2, w2 := blockingPipe(t)
	// A second descriptor on the same file description as r1, as a parent
	// process would hold.
	var probe int
	raw, _ := r1.SyscallConn()
	if err := raw.Control(func(fd uintptr) { probe, _ = unix.Dup(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(probe)
	nonblocking := func() bool {
		fl, err := unix.FcntlInt(uintptr(probe), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fl&unix.O_NONBLOCK != 0
	}
	c := Stdio(r1, w2)
	defer Stdio(r2, w1).Close()
	if !nonblocking() {
		t.Fatal("Stdio did not make the pipe non-blocking: no deadlines")
	}
	if err := c.SetReadDeadline(noDeadline); err != nil {
		t.Fatalf("no deadlines: %v", err)
	}
	c.Close()
	if nonblocking() {
		t.Fatal("Close left the pipe non-blocking")
	}
}
