package carriers

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
)

func TestAddresses(t *testing.T) {
	cases := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9000", true},
		{"tcp://127.0.0.1:9000", true},
		{"[::1]:9000", true},
		{"tcp://localhost:0", true},
		{"nocolon", false},
		{"tcp://", false},
		{"udp://127.0.0.1:9000", false},
		{"tls://127.0.0.1:9000", false}, // not in this build yet
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			_, err := NewDialer(tc.addr)
			if tc.ok != (err == nil) {
				t.Fatalf("NewDialer: err %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadAddress) {
				t.Fatalf("NewDialer: %v is not ErrBadAddress", err)
			}
		})
	}
}

// TestTCPNoDelay: both ends of a TCP carrier have Nagle off.
func TestTCPNoDelay(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	d, err := NewDialer("tcp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	defer s.Close()
	for name, conn := range map[string]net.Conn{"dialled": c, "accepted": s} {
		if !noDelay(t, conn) {
			t.Errorf("%s carrier has Nagle on", name)
		}
	}
}

func noDelay(t *testing.T, c net.Conn) bool {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return v != 0
}
