//go:build linux

package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/nettest"
)

// listen is a raw Listener on a loopback port, closed at the test's end.
func listen(t testing.TB) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := NewListener(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.Close() })
	return rl
}

// pair is a connection accepted raw and its peer: dialled raw
// (ConnectNow) or through Go's net.
func pair(t testing.TB, rawDial bool) (accepted *Conn, dialled net.Conn) {
	t.Helper()
	ln := listen(t)
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	if rawDial {
		c, err, ok := ConnectNow(ln.Addr().(*net.TCPAddr).AddrPort())
		if !ok || err != nil {
			t.Fatalf("ConnectNow: ok %v, err %v", ok, err)
		}
		dialled = c
	} else {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		dialled = c
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.c.(*Conn), dialled
}

func TestConnIsNetConn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rawDial bool
	}{{"accepted raw, dialled by net", false}, {"both raw", true}} {
		t.Run(tc.name, func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				a, d := pair(t, tc.rawDial)
				return a, d, func() { a.Close(); d.Close() }, nil
			})
		})
	}
}

func TestConnAddresses(t *testing.T) {
	a, d := pair(t, true)
	defer a.Close()
	defer d.Close()
	if a.RemoteAddr().String() != d.LocalAddr().String() || a.LocalAddr().String() != d.RemoteAddr().String() {
		t.Fatalf("accepted %v<-%v, dialled %v->%v", a.LocalAddr(), a.RemoteAddr(), d.LocalAddr(), d.RemoteAddr())
	}
}

// The data path's raw read, on bytes already there, runs on the
// descriptor itself: the Conn does not move into Go's poller.
func TestRawReadStaysRaw(t *testing.T) {
	a, d := pair(t, false)
	defer a.Close()
	defer d.Close()
	if _, err := d.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	rc, _ := a.SyscallConn()
	var got []byte
	buf := make([]byte, 16)
	for len(got) < 4 {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), buf)
			return rerr != syscall.EAGAIN
		})
		if err != nil || rerr != nil {
			t.Fatal(err, rerr)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "ping" {
		t.Fatalf("read %q", got)
	}
	// Whether it had to wait depends on the kernel's timing; once the
	// bytes are there a raw read takes them without a file.
	a.mu.RLock()
	waited := a.f != nil
	a.mu.RUnlock()
	if _, err := d.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(a, buf[:4]); err != nil || string(buf[:4]) != "pong" {
		t.Fatalf("Read %q, %v", buf[:4], err)
	}
	a.mu.RLock()
	moved := a.f != nil
	a.mu.RUnlock()
	if !moved {
		t.Fatal("a blocking Read did not move the Conn into Go's poller")
	}
	t.Logf("the raw read waited: %v", waited)
}

func TestCloseWriteThenReply(t *testing.T) {
	a, d := pair(t, true)
	defer a.Close()
	defer d.Close()
	if err := a.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer read %d, %v after CloseWrite; want EOF", n, err)
	}
	if _, err := d.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(a, b); err != nil || b[0] != 'x' {
		t.Fatalf("read after CloseWrite: %q %v", b, err)
	}
}

func TestLingerZeroResets(t *testing.T) {
	a, d := pair(t, false)
	defer d.Close()
	if err := a.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	a.Close()
	_, err := d.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read %v after a linger-0 close; want ECONNRESET", err)
	}
}

func TestClosedConnAndListener(t *testing.T) {
	a, d := pair(t, true)
	d.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Close":      a.Close(),
		"CloseWrite": a.CloseWrite(),
	} {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s on a closed Conn: %v, want net.ErrClosed", name, err)
		}
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read on a closed Conn: %v", err)
	}
	ln := listen(t)
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}

func TestConnectNow(t *testing.T) {
	ln := listen(t)
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	ln.Close()
	// Nothing listens there now: the connect is refused at once.
	_, err, ok := ConnectNow(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
	if !ok || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("ConnectNow to a closed port: ok %v, err %v; want ECONNREFUSED", ok, err)
	}
	// Not loopback: left to the usual dial.
	if _, _, ok := ConnectNow(netip.MustParseAddrPort("192.0.2.1:80")); ok {
		t.Fatal("ConnectNow took a non-loopback address")
	}
	if _, err := NewListener(nil); !errors.Is(err, ErrNotTCP) {
		t.Fatalf("NewListener(nil): %v", err)
	}
}

// WriteBuffers writes every byte of many small buffers, in order, with
// writev (not one write each), waiting when the socket is full.
func TestWriteBuffers(t *testing.T) {
	a, d := pair(t, true)
	defer a.Close()
	defer d.Close()
	var want []byte
	var bufs [][]byte
	for i := 0; i < 5000; i++ {
		b := []byte(strings.Repeat(string(rune('a'+i%26)), 1+i%300))
		want = append(want, b...)
		bufs = append(bufs, b, nil) // empty ones too
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(d)
		got <- b
	}()
	n, err := a.WriteBuffers(bufs)
	if err != nil || n != len(want) {
		t.Fatalf("WriteBuffers: %d of %d, %v", n, len(want), err)
	}
	a.CloseWrite()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the peer read %d bytes, not the %d written in order", len(b), len(want))
	}
	a.Close()
	if _, err := a.WriteBuffers([][]byte{[]byte("x")}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBuffers after Close: %v, want net.ErrClosed", err)
	}
	rc, _ := a.SyscallConn()
	if err := rc.Read(func(uintptr) bool { return true }); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a raw read after the move and Close: %v, want net.ErrClosed", err)
	}
	if a.LocalAddr().(*net.TCPAddr).Port == 0 {
		t.Fatal("LocalAddr after Close lost the address")
	}
}
