package carriers

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

var noDeadline time.Time

// fifoAddrs are the two ends' addresses of a FIFO pair in a new directory.
func fifoAddrs(t testing.TB) (listenAddr, dialAddr string) {
	t.Helper()
	d := shortTempDir(t)
	a, b := filepath.Join(d, "a"), filepath.Join(d, "b")
	return "fifo:" + a + "," + b, "fifo:" + b + "," + a
}

// TestFifoConn: the two ends of a FIFO pair, dialled and accepted, are a
// net.Conn pair.
func TestFifoConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		la, da := fifoAddrs(t)
		ln, err := Listen(la)
		if err != nil {
			return nil, nil, nil, err
		}
		ach := acceptAsync(t, ln)
		c1, err = mustDialer(t, da).Dial(context.Background())
		a := <-ach
		if err != nil || a.err != nil {
			ln.Close()
			return nil, nil, nil, errors.Join(err, a.err)
		}
		return c1, a.c, func() { c1.Close(); a.c.Close(); ln.Close() }, nil
	})
}

// TestFifoNextPeer: an Accept already waiting when the accepted conn
// closes (as Node.Serve's is) does not pair with the departing peer: that
// peer reads EOF, and the next dialler gets the next conn.
func TestFifoNextPeer(t *testing.T) {
	la, da := fifoAddrs(t)
	ln := listen(t, la)
	d := mustDialer(t, da)
	c1, s1 := dialPair(t, ln, d)
	roundTrip(t, c1, s1, "first peer")
	next := acceptAsync(t, ln)
	s1.Close() // the listening side drops the link
	if n, err := c1.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the old dialler read %d, %v; want EOF", n, err)
	}
	c1.Close()
	c2, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Close() })
	a := <-next
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { a.c.Close() })
	roundTrip(t, c2, a.c, "second peer")
}

// TestFifoMade: the pipes are made with mode 0600 when absent; a path that
// is not a FIFO is refused.
func TestFifoMade(t *testing.T) {
	la, _ := fifoAddrs(t)
	listen(t, la)
	for _, p := range strings.Split(strings.TrimPrefix(la, "fifo:"), ",") {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&fs.ModeNamedPipe == 0 || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a named pipe with 0600", p, st.Mode())
		}
	}
	d := shortTempDir(t)
	regular := filepath.Join(d, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "fifo:" + regular + "," + filepath.Join(d, "w")
	if ln, err := Listen(addr); err == nil || !strings.Contains(err.Error(), "not a named pipe") {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("Listen on a regular file: %v, want 'not a named pipe'", err)
	}
	if _, err := mustDialer(t, addr).Dial(context.Background()); err == nil || !strings.Contains(err.Error(), "not a named pipe") {
		t.Fatalf("Dial of a regular file: %v, want 'not a named pipe'", err)
	}
}

// TestFifoListenerServesOneAtATime: after the accepted conn closes, the
// next Accept opens the pair again for the next peer; the old peer reads
// EOF.
func TestFifoListenerServesOneAtATime(t *testing.T) {
	la, da := fifoAddrs(t)
	ln := listen(t, la)
	d := mustDialer(t, da)
	for i, msg := range []string{"first peer", "second peer", "third peer"} {
		c, s := dialPair(t, ln, d)
		roundTrip(t, c, s, msg)
		if i%2 == 0 { // the listening side drops the link
			s.Close()
			if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("the dialler read %d, %v after the listener closed; want EOF", n, err)
			}
			c.Close()
		} else { // the dialling side does
			c.Close()
			if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("the listener read %d, %v after the dialler closed; want EOF", n, err)
			}
			s.Close()
		}
	}
}

// TestFifoCloseWrite: CloseWrite gives the peer EOF while the other
// direction goes on.
func TestFifoCloseWrite(t *testing.T) {
	la, da := fifoAddrs(t)
	c, s := dialPair(t, listen(t, la), mustDialer(t, da))
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the peer's CloseWrite: %v, want EOF", err)
	}
	if _, err := s.Write([]byte("still")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "still" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestFifoCancel: a listener's Close ends an Accept waiting for a peer,
// and a cancelled context ends a Dial waiting for one; neither leaves a
// goroutine or a descriptor behind (TestMain checks the goroutines).
func TestFifoCancel(t *testing.T) {
	la, da := fifoAddrs(t)
	ln, err := Listen(la)
	if err != nil {
		t.Fatal(err)
	}
	ach := acceptAsync(t, ln)
	ln.Close()
	if a := <-ach; !errors.Is(a.err, net.ErrClosed) {
		if a.c != nil {
			a.c.Close()
		}
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", a.err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	dch := make(chan error, 1)
	go func() {
		c, err := mustDialer(t, da).Dial(ctx)
		if c != nil {
			c.Close()
		}
		dch <- err
	}()
	cancel()
	if err := <-dch; !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial after cancel: %v, want context.Canceled", err)
	}
}
