package carriers

import (
	"context"
	"errors"
	"net"
	"testing"
)

// TestLocalBinds: carriers leave from the binds given, the fewest-used
// first, and a closed one gives its bind back; a bind this host does not
// have is refused by name.
func TestLocalBinds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	var binds []LocalBind
	for _, s := range []string{"127.0.0.2", "127.0.0.3"} {
		b, err := ParseLocalBind(s)
		if err != nil {
			t.Fatal(err)
		}
		binds = append(binds, b)
	}
	d, err := NewDialer(ln.Addr().String(), WithLocalBinds(binds))
	if err != nil {
		t.Fatal(err)
	}
	from := func(c net.Conn) string { h, _, _ := net.SplitHostPort(c.LocalAddr().String()); return h }
	var conns []net.Conn
	for range 4 {
		c, err := d.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	count := map[string]int{}
	for _, c := range conns {
		count[from(c)]++
	}
	if count["127.0.0.2"] != 2 || count["127.0.0.3"] != 2 {
		t.Fatalf("4 carriers left from %v, want 2 from each bind", count)
	}
	// The one lost is dialled again from its own bind.
	lost := from(conns[0])
	conns[0].Close()
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if from(c) != lost {
		t.Fatalf("redialled from %s, want %s (the bind that lost its carrier)", from(c), lost)
	}
	for _, c := range append(conns[1:], c) {
		c.Close()
	}
	for _, bad := range []string{"192.0.2.77", "no-such-if0"} {
		if _, err := ParseLocalBind(bad); !errors.Is(err, ErrBadBind) {
			t.Errorf("ParseLocalBind(%q) = %v, want ErrBadBind", bad, err)
		}
	}
}
