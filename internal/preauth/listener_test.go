package preauth

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// listenGated is a gated loopback listener, closed by t.Cleanup.
func listenGated(t testing.TB, cfg Config) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(ln, cfg)
	t.Cleanup(func() { l.Close() })
	return l
}

// dial connects to l, closed by t.Cleanup.
func dial(t testing.TB, l net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// accept is l.Accept that fails the test; the conn is closed by t.Cleanup.
func accept(t testing.TB, l net.Listener) net.Conn {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed fails unless the far end closes c within a generous limit.
func waitClosed(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("waiting for the server to close %v: %v", c.LocalAddr(), err)
	}
}

// TestListener: Accept hands out the accepted connection itself, with its
// entry found by Lookup until Done; a full gate evicts the oldest silent
// connection, which the client sees closed; a refused one is closed and
// Accept goes on to the next; Close ends Accept with net.ErrClosed and
// forgets what was pending.
func TestListener(t *testing.T) {
	l := listenGated(t, Config{MaxPending: 2, MaxPerSource: 2, FirstByteTimeout: time.Minute, Timeout: time.Minute})
	c0 := dial(t, l)
	s0 := accept(t, l)
	if _, ok := s0.(*net.TCPConn); !ok {
		t.Fatalf("Accept returned a %T, want the *net.TCPConn it accepted", s0)
	}
	e0 := Lookup(s0)
	if e0 == nil {
		t.Fatal("Lookup found no entry for an admitted connection")
	}

	// s1 sends a byte: active, so it is not the one a third evicts.
	c1 := dial(t, l)
	s1 := accept(t, l)
	e1 := Lookup(s1)
	if _, err := c1.Write([]byte("h")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(e1.Conn(), make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	dial(t, l)
	s2 := accept(t, l)
	waitClosed(t, c0)
	if !errors.Is(e0.Err(), ErrEvicted) || Lookup(s0) != nil {
		t.Fatalf("the silent connection: err %v, still registered %v; want evicted and forgotten", e0.Err(), Lookup(s0) != nil)
	}

	// Both pending connections active: the next is refused and closed,
	// and Accept returns the one after, once a slot is free.
	Lookup(s2).Active()
	refused := dial(t, l)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	waitClosed(t, refused)
	if got := l.Gate().Stats().Refused; got != 1 {
		t.Fatalf("refused %d, want 1", got)
	}
	e1.Done()
	if Lookup(s1) != nil {
		t.Fatal("a connection whose handshake is done is still registered")
	}
	dial(t, l)
	s3 := <-accepted
	if s3 == nil {
		t.Fatal("Accept failed after a refusal")
	}
	t.Cleanup(func() { s3.Close() })

	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if Lookup(s2) != nil || Lookup(s3) != nil {
		t.Fatal("a closed gate's connections are still registered")
	}
}

// mapConn is a net.Conn whose type cannot be a map key.
type mapConn struct {
	net.Conn
	m map[string]int
}

// TestLookupUncomparable: a connection whose type cannot be a map key
// (which a library user may hand to sockmux.Client) has no entry, and
// Lookup does not panic on it.
func TestLookupUncomparable(t *testing.T) {
	if e := Lookup(mapConn{m: map[string]int{}}); e != nil {
		t.Fatalf("Lookup of a connection no Listener admitted: %v", e)
	}
	if e := Lookup(nil); e != nil {
		t.Fatalf("Lookup(nil): %v", e)
	}
}
