package sockmux_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/internal/testkit"
)

// countingConn counts the bytes read from a carrier connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// serveCarriers accepts carrier connections on ln for one server session:
// the first makes the session (sent on the channel), the others are
// added to it. Each is wrapped by wrap, when set.
func serveCarriers(t testing.TB, ln net.Listener, cfg *sockmux.Config, wrap func(i int, c net.Conn) net.Conn) <-chan *sockmux.Session {
	t.Helper()
	ch := make(chan *sockmux.Session, 1)
	go func() {
		var s *sockmux.Session
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				if s == nil {
					close(ch)
				}
				return
			}
			if wrap != nil {
				c = wrap(i, c)
			}
			if s != nil {
				s.AddCarrier(c)
				continue
			}
			if s, err = sockmux.Server(c, cfg); err != nil {
				t.Error(err)
				close(ch)
				return
			}
			t.Cleanup(func() { s.Close() })
			ch <- s
		}
	}()
	return ch
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// echoAll echoes every stream s accepts until it ends.
func echoAll(s *sockmux.Session) {
	for {
		st, err := s.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer st.Close()
			io.Copy(st, st)
		}()
	}
}

func TestStriping(t *testing.T) {
	testkit.CheckLeaks(t)
	ln := listen(t)
	var counts [2]atomic.Int64
	accepted := make(chan struct{}, 2)
	servers := serveCarriers(t, ln, nil, func(i int, c net.Conn) net.Conn {
		accepted <- struct{}{}
		if i < len(counts) {
			return countingConn{c, &counts[i]}
		}
		return c
	})
	cfg := sockmux.DefaultConfig()
	cfg.Carriers = 2
	cfg.Dialer = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	first, err := cfg.Dialer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	client, err := sockmux.Client(first, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-servers
	go echoAll(server)
	<-accepted
	<-accepted // the second carrier is dialled; it joins after its handshake
	// Until the second carrier has joined, everything rides the first:
	// echo streams until the second has carried a good share, within a
	// bound.
	for i := 0; counts[1].Load() < 1<<20; i++ {
		if i == 32 {
			t.Fatalf("the second carrier carried %d bytes of %d", counts[1].Load(), counts[0].Load()+counts[1].Load())
		}
		st, err := client.Open(context.Background(), "striped")
		if err != nil {
			t.Fatal(err)
		}
		err = testkit.EchoCheck(st, uint64(i), 4<<20)
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if counts[0].Load() == 0 || counts[1].Load() == 0 {
		t.Errorf("carriers carried %d and %d bytes: not striped", counts[0].Load(), counts[1].Load())
	}
}

// A client whose carrier is cut dials again; the server adds the new
// carrier, and the stream goes on whole.
func TestResume(t *testing.T) {
	testkit.CheckLeaks(t)
	ln := listen(t)
	proxy := testkit.NewProxy(t, ln.Addr().String())
	var accepted atomic.Int32
	servers := serveCarriers(t, ln, nil, func(_ int, c net.Conn) net.Conn {
		accepted.Add(1)
		return c
	})
	cfg := sockmux.DefaultConfig()
	cfg.Dialer = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", proxy.Addr())
	}
	first, err := cfg.Dialer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	client, err := sockmux.Client(first, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-servers
	st, err := client.Open(context.Background(), "resumed")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	peer, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	want := testkit.Payload(7, 1<<20)
	half := len(want) / 2
	if _, err := st.Write(want[:half]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(want))
	if _, err := io.ReadFull(peer, b[:half]); err != nil {
		t.Fatal(err)
	}
	proxy.Cut() // the rest rides the carrier the client dials again
	if _, err := st.Write(want[half:]); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	rest, err := io.ReadAll(peer)
	if err != nil || !bytes.Equal(append(b[:half], rest...), want) {
		t.Fatalf("the far end read %d bytes after the cut (%v), want %d", len(rest), err, len(want)-half)
	}
	if n := accepted.Load(); n < 2 {
		t.Errorf("the server accepted %d carriers: the link was not resumed", n)
	}
	if err := client.Err(); err != nil {
		t.Errorf("client session ended: %v", err)
	}
}
