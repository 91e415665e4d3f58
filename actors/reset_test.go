package actors

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// resetAfter serves a target that writes n bytes and then resets the
// connection (SO_LINGER 0), as a server that fails mid-answer does.
func resetAfter(t testing.TB, n int) string {
	return testkit.Serve(t, func(c net.Conn) {
		// The client's first byte (or its end) first: a reset before
		// its dial returned would fail the dial instead of its read.
		if _, err := c.Read(make([]byte, 1)); err != nil && err != io.EOF {
			return
		}
		if _, err := c.Write(testkit.Payload(7, n)); err != nil {
			return
		}
		_ = c.(*net.TCPConn).SetLinger(0)
	})
}

// TestResetReachesClient: a target that resets mid-answer reaches the -L
// client as a reset, never as a clean end, whether the client had shut its
// own write side or not, on every carrier.
func TestResetReachesClient(t *testing.T) {
	for _, carrier := range pairCarriers {
		for _, halfClosed := range []bool{false, true} {
			name := carrier
			if halfClosed {
				name += "/half-closed"
			}
			t.Run(name, func(t *testing.T) {
				target := resetAfter(t, 1<<20)
				p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, target)}, Carrier: carrier})
				c := testkit.Dial(t, p.B.ForwardAddrs()[0])
				_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // hang guard
				var err error
				if halfClosed {
					err = c.CloseWrite()
				} else {
					_, err = c.Write([]byte{1})
				}
				if err != nil {
					t.Fatal(err)
				}
				n, err := io.Copy(io.Discard, c)
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("client read %d bytes then %v, want a reset (ECONNRESET)", n, err)
				}
			})
		}
	}
}
