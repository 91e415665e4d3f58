//go:build unix

package preauth

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestUnreadBytesAreNotIdle: a connection whose first bytes wait unread
// in its socket (a burst of peers the handshakes have not reached yet) is
// not evicted as silent; a truly silent one still is.
func TestUnreadBytesAreNotIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// pair returns the accepted side of a loopback connection whose
	// dialler has written hello (nothing when empty), and that it arrived.
	pair := func(hello string) net.Conn {
		t.Helper()
		d, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if hello != "" {
			d.Write([]byte(hello))
			// Wait, without reading, until the bytes are in c's socket:
			// the poller wakes the function once c is readable.
			c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
			rc, err := c.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			if err := rc.Read(func(uintptr) bool { return sentSomething(c) }); err != nil {
				t.Fatalf("the dialler's bytes never showed in the socket: %v", err)
			}
			c.SetReadDeadline(time.Time{})
		}
		return c
	}
	g := New(Config{MaxPending: 8, MaxPerSource: 1, FirstByteTimeout: time.Hour, Timeout: time.Hour})
	defer g.Close()
	waiting := pair("HELLO")
	if _, err := g.Admit(waiting); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Admit(pair("")); !errors.Is(err, ErrSourceFull) {
		t.Fatalf("the second connection of the source: %v, want ErrSourceFull (the first has sent its HELLO)", err)
	}
	if s := g.Stats(); s.Evicted != 0 || s.Pending != 1 {
		t.Fatalf("stats %+v: want the waiting connection kept, nothing evicted", s)
	}
	g2 := New(Config{MaxPending: 8, MaxPerSource: 1, FirstByteTimeout: time.Hour, Timeout: time.Hour})
	defer g2.Close()
	if _, err := g2.Admit(pair("")); err != nil {
		t.Fatal(err)
	}
	if _, err := g2.Admit(pair("")); err != nil {
		t.Fatalf("a silent first connection should make room: %v", err)
	}
	if s := g2.Stats(); s.Evicted != 1 {
		t.Fatalf("stats %+v: want the silent connection evicted", s)
	}
}
