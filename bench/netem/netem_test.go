package netem

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// newNet makes a Net for the test, or skips it where the host cannot.
func newNet(t testing.TB, paths ...Path) *Net {
	t.Helper()
	testkit.NeedTool(t, "ip")
	n, err := New(paths...)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// echo serves an echo on Far inside n until the test ends; each accepted
// connection's remote address goes to from.
func echo(t testing.TB, n *Net, from chan<- net.Addr) string {
	t.Helper()
	ln, err := n.Listen("tcp", n.Far().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			from <- c.RemoteAddr()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// roundTrip sends a byte on c and waits for it back.
func roundTrip(t testing.TB, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte{7}); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 7 {
		t.Fatalf("echo: %v %v", b, err)
	}
	return time.Since(start)
}

// TestPaths: each source address crosses its own path (the far side sees
// that address; a round trip takes at least the path's two delays, the
// emulator's promise, a bound a slow machine cannot break) and the path
// counts the packets; Cut makes a dial across it fail and counts what it
// dropped, Restore lets the next one through; a path that loses
// everything lets nothing through.
func TestPaths(t *testing.T) {
	testkit.CheckLeaks(t)
	paths := []Path{{Delay: 15 * time.Millisecond}, {Rate: 10 * MB, Delay: time.Millisecond}, {Loss: 1}}
	n := newNet(t, paths...)
	from := make(chan net.Addr, 16)
	addr := echo(t, n, from)
	dial := func(i int, timeout time.Duration) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		return n.Dial(ctx, "tcp", n.Source(i), addr)
	}
	for i, p := range paths[:2] {
		c, err := dial(i, 5*time.Second)
		if err != nil {
			t.Fatalf("path %d: %v", i, err)
		}
		defer c.Close()
		if got := (<-from).(*net.TCPAddr).IP; !got.Equal(n.Source(i)) {
			t.Errorf("path %d: the far side sees %v, want %v", i, got, n.Source(i))
		}
		if rtt := roundTrip(t, c); rtt < p.RTT() {
			t.Errorf("path %d: a round trip took %v, less than the path's %v", i, rtt, p.RTT())
		}
		if st, _ := n.Stats(i); st.Delivered < 4 || st.Bytes == 0 {
			t.Errorf("path %d: stats %+v after a handshake and a round trip", i, st)
		}
	}

	if err := n.Cut(0); err != nil {
		t.Fatal(err)
	}
	if c, err := dial(0, 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("a dial across a cut path got through")
	}
	if st, _ := n.Stats(0); st.Cut == 0 {
		t.Errorf("cut path: stats %+v, want the dropped SYNs counted", st)
	}
	if err := n.Restore(0); err != nil {
		t.Fatal(err)
	}
	c, err := dial(0, 5*time.Second)
	if err != nil {
		t.Fatalf("after Restore: %v", err)
	}
	c.Close()
	<-from

	if c, err := dial(2, 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("a dial across a path losing every packet got through")
	}
	if st, _ := n.Stats(2); st.Lost == 0 || st.Delivered != 0 {
		t.Errorf("lossy path: stats %+v, want only losses", st)
	}
}

// TestBadPaths: figures that cannot be emulated, and paths that do not
// exist, are ErrBadPath before anything is made.
func TestBadPaths(t *testing.T) {
	for _, paths := range [][]Path{nil, {{Loss: 1.5}}, {{Rate: -1}}, {{Delay: -time.Second}}, {{Loss: -0.1}}} {
		if _, err := New(paths...); !errors.Is(err, ErrBadPath) {
			t.Errorf("New(%+v): %v, want ErrBadPath", paths, err)
		}
	}
	n := &Net{}
	for _, err := range []error{n.Cut(0), n.Restore(-1), n.Set(0, Path{})} {
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("a path that does not exist: %v, want ErrBadPath", err)
		}
	}
}

// fakeDev is a packet device that is never read: the shaper is driven
// through admit and due.
type fakeDev struct{ closed chan struct{} }

func (d fakeDev) Read([]byte) (int, error)    { <-d.closed; return 0, io.EOF }
func (d fakeDev) Write(b []byte) (int, error) { return len(b), nil }
func (d fakeDev) Close() error                { close(d.closed); return nil }

// TestShaperModel: at Rate, a packet leaves its direction's bottleneck
// len/Rate after the one before it (or after arriving, when the link is
// idle) and is due Delay later; one that would wait longer than Queue is
// dropped; the directions do not share a bottleneck; a cut path drops
// what it held.
func TestShaperModel(t *testing.T) {
	src := [4]byte{10, 77, 1, 2}
	s := newShaper(fakeDev{make(chan struct{})}, src, MTU, Path{Rate: 1000, Delay: time.Second, Queue: 2500 * time.Millisecond})
	defer s.close()
	// Keep the writer away: everything is due an hour from now.
	pkt := func(from [4]byte) packet {
		b := make([]byte, 1000)
		b[0] = 0x45
		copy(b[12:16], from[:])
		return packet{buf: &b, n: len(b)}
	}
	t0 := time.Now().Add(time.Hour)
	other := [4]byte{10, 77, 0, 1}
	var admitted []bool
	for _, from := range [][4]byte{src, src, src, src, other} {
		admitted = append(admitted, s.admit(pkt(from), t0))
	}
	if want := []bool{true, true, true, false, true}; !slices.Equal(admitted, want) {
		t.Fatalf("admitted %v, want %v (the fourth would wait 3 s, over the 2.5 s queue)", admitted, want)
	}
	s.mu.Lock()
	var dues []time.Duration
	for _, d := range s.dirs {
		for _, p := range d.q {
			dues = append(dues, p.due.Sub(t0))
		}
	}
	s.mu.Unlock()
	want := []time.Duration{2 * time.Second, 3 * time.Second, 4 * time.Second, 2 * time.Second}
	if !slices.Equal(dues, want) {
		t.Errorf("due after %v, want %v", dues, want)
	}
	if st := s.snapshot(); st.Overflow != 1 {
		t.Errorf("stats %+v, want one overflow", st)
	}
	s.setCut(true)
	if s.admit(pkt(src), t0) {
		t.Error("a cut path admitted a packet")
	}
	if st := s.snapshot(); st.Cut < 2 {
		t.Errorf("stats %+v: the cut should count what was held and what came after", st)
	}
}
