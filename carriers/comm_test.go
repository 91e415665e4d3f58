//go:build linux

package carriers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

// TestCommSocketConn: comm: on a socket file is a unix socket connection,
// and a net.Conn pair.
func TestCommSocketConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		addr := "comm:" + filepath.Join(shortTempDir(t), "s")
		ln, err := Listen(addr)
		if err != nil {
			return nil, nil, nil, err
		}
		ach := acceptAsync(t, ln)
		c1, err = mustDialer(t, addr).Dial(context.Background())
		if err != nil {
			ln.Close()
			<-ach
			return nil, nil, nil, err
		}
		a := <-ach
		if a.err != nil {
			c1.Close()
			ln.Close()
			return nil, nil, nil, a.err
		}
		return c1, a.c, func() { c1.Close(); a.c.Close(); ln.Close() }, nil
	})
}

// TestCommSocketFile: Listen replaces a stale socket file, refuses one
// something listens on, and refuses a path that is neither a socket nor a
// device.
func TestCommSocketFile(t *testing.T) {
	dir := shortTempDir(t)
	stale := filepath.Join(dir, "stale")
	old, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close() // leaves the socket file behind
	ln := listen(t, "comm:"+stale)
	c, s := dialPair(t, ln, mustDialer(t, "comm:"+stale))
	roundTrip(t, c, s, "over a replaced stale socket")

	if ln2, err := Listen("comm:" + stale); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		if ln2 != nil {
			ln2.Close()
		}
		t.Fatalf("Listen on a live socket: %v, want EADDRINUSE", err)
	}

	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ln3, err := Listen("comm:" + regular); err == nil || !strings.Contains(err.Error(), "neither") {
		if ln3 != nil {
			ln3.Close()
		}
		t.Fatalf("Listen on a regular file: %v", err)
	}
	if _, err := mustDialer(t, "comm:"+regular).Dial(context.Background()); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Fatalf("Dial of a regular file: %v", err)
	}
}

// TestCommPty: comm: on a tty (the slave of a pty) is raw: every byte
// value crosses unchanged both ways. Listen serves the device again once
// the conn it gave is closed.
func TestCommPty(t *testing.T) {
	master, slave := openPty(t)
	addr := "comm:" + slave
	all := make([]byte, 0, 4*256)
	for range 4 {
		for b := range 256 {
			all = append(all, byte(b))
		}
	}
	check := func(t *testing.T, c net.Conn) {
		t.Helper()
		for _, p := range [][2]io.ReadWriter{{master, c}, {c, master}} {
			errc := make(chan error, 1)
			go func() {
				_, err := p[0].Write(all)
				errc <- err
			}()
			got := make([]byte, len(all))
			if _, err := io.ReadFull(p[1], got); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, all) {
				t.Fatalf("bytes changed on the way: %q", got)
			}
		}
	}
	t.Run("dial", func(t *testing.T) {
		c, err := mustDialer(t, addr).Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		check(t, c)
	})
	t.Run("listen", func(t *testing.T) {
		ln := listen(t, addr)
		for range 2 {
			a := <-acceptAsync(t, ln)
			if a.err != nil {
				t.Fatal(a.err)
			}
			check(t, a.c)
			a.c.Close()
		}
	})
}

// openPty opens a pty master, polled by the runtime, and names its slave.
func openPty(t testing.TB) (master *os.File, slave string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	raw, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var perr error
	if err := raw.Control(func(fd uintptr) {
		if perr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); perr != nil {
			return
		}
		n, perr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
	}); err != nil || perr != nil {
		t.Skipf("no pty: %v %v", err, perr)
	}
	return m, "/dev/pts/" + strconv.Itoa(n)
}
