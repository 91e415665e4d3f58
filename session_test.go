package sockmux_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/testkit"
)

// carrierPair makes two connected carrier connections of one kind.
type carrierPair func(t testing.TB) (client, server net.Conn)

func pipePair(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }

func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return c, r.c
}

var carrierKinds = []struct {
	name string
	pair carrierPair
}{{"pipe", pipePair}, {"tcp", tcpPair}}

// sessions starts a client and a server over the carrier pair, with the
// configurations given (nil: defaults), and closes both at the end.
func sessions(t testing.TB, pair carrierPair, ccfg, scfg *sockmux.Config) (client, server *sockmux.Session) {
	t.Helper()
	cc, sc := pair(t)
	client, server, cerr, serr := startBoth(cc, sc, ccfg, scfg)
	if cerr != nil || serr != nil {
		t.Fatalf("client: %v; server: %v", cerr, serr)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// startBoth runs Client and Server at once (each waits for the other's
// handshake).
func startBoth(cc, sc net.Conn, ccfg, scfg *sockmux.Config) (client, server *sockmux.Session, cerr, serr error) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		server, serr = sockmux.Server(sc, scfg)
	}()
	client, cerr = sockmux.Client(cc, ccfg)
	wg.Wait()
	if cerr != nil && server != nil {
		server.Close()
	}
	if serr != nil && client != nil {
		client.Close()
	}
	return client, server, cerr, serr
}

// streamPair opens a stream from a to target and accepts it on b.
func streamPair(t testing.TB, a, b *sockmux.Session, target string) (opened, accepted *sockmux.Stream) {
	t.Helper()
	opened, err := a.Open(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	// The OPEN is sent; the peer's AcceptStream has it once it arrives.
	accepted, err = b.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	return opened, accepted
}

func TestStreamIsNetConn(t *testing.T) {
	for _, k := range carrierKinds {
		t.Run(k.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
				client, server := sessions(t, k.pair, nil, nil)
				c1, c2 := streamPair(t, client, server, "nettest")
				return c1, c2, func() {
					c1.Close()
					c2.Close()
					client.Close()
					server.Close()
				}, nil
			})
		})
	}
}

func TestStreamsBothWays(t *testing.T) {
	for _, k := range carrierKinds {
		t.Run(k.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			client, server := sessions(t, k.pair, nil, nil)
			// Each side opens streams the other echoes; many at once.
			for _, dir := range []struct {
				name     string
				from, to *sockmux.Session
			}{{"client-opens", client, server}, {"server-opens", server, client}} {
				t.Run(dir.name, func(t *testing.T) {
					const streams, size = 8, 1 << 20
					go func() {
						for range streams {
							st, err := dir.to.AcceptStream()
							if err != nil {
								return
							}
							go func() {
								defer st.Close()
								io.Copy(st, st)
							}()
						}
					}()
					var wg sync.WaitGroup
					for i := range streams {
						wg.Add(1)
						go func() {
							defer wg.Done()
							st, err := dir.from.Open(context.Background(), "echo")
							if err != nil {
								t.Error(err)
								return
							}
							defer st.Close()
							if err := testkit.EchoCheck(st, uint64(i), size); err != nil {
								t.Errorf("stream %d: %v", i, err)
							}
						}()
					}
					wg.Wait()
				})
			}
		})
	}
}

func TestTargetArrives(t *testing.T) {
	testkit.CheckLeaks(t)
	client, server := sessions(t, pipePair, nil, nil)
	for _, target := range []string{"echo", "db.internal:5432", "ünïcode service/v2"} {
		c, s := streamPair(t, client, server, target)
		if c.Target() != target || s.Target() != target {
			t.Errorf("target %q: opener has %q, accepter %q", target, c.Target(), s.Target())
		}
		c.Close()
		s.Close()
	}
	for _, bad := range []string{"", string(bytes.Repeat([]byte("x"), engine.MaxTargetLen+1)), "\xff"} {
		if _, err := client.Open(context.Background(), bad); !errors.Is(err, engine.ErrMalformed) {
			t.Errorf("Open(%.20q): %v, want ErrMalformed", bad, err)
		}
	}
}

func TestHalfClose(t *testing.T) {
	testkit.CheckLeaks(t)
	client, server := sessions(t, pipePair, nil, nil)
	c, s := streamPair(t, client, server, "half")
	if _, err := c.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("more")); !errors.Is(err, sockmux.ErrWriteShut) {
		t.Errorf("write after CloseWrite: %v, want ErrWriteShut", err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v; want the request, then EOF", got, err)
	}
	if _, err := s.Write([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got, err = io.ReadAll(c)
	if err != nil || string(got) != "answer" {
		t.Fatalf("client read %q, %v; want the answer, then EOF", got, err)
	}
	c.Close()
}

// A stream cut short reaches both ends as a reset, never as io.EOF.
func TestResetNotEOF(t *testing.T) {
	cases := []struct {
		name string
		cut  func(client, server *sockmux.Session, c, s *sockmux.Stream)
	}{
		{"peer session closed", func(client, _ *sockmux.Session, _, _ *sockmux.Stream) { client.Close() }},
		{"carrier lost", func(_, _ *sockmux.Session, _, _ *sockmux.Stream) {}}, // the carrier is closed below
		{"reader closed, writer goes on", func(_, _ *sockmux.Session, c, _ *sockmux.Stream) { c.Close() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			cc, sc := net.Pipe()
			cfg := sockmux.DefaultConfig()
			cfg.ResumeWindow = -1
			client, server, cerr, serr := startBoth(cc, sc, cfg, cfg)
			if cerr != nil || serr != nil {
				t.Fatal(cerr, serr)
			}
			t.Cleanup(func() { client.Close(); server.Close() })
			c, s := streamPair(t, client, server, "cut")
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			tc.cut(client, server, c, s)
			if tc.name == "carrier lost" {
				cc.Close()
			}
			// The server side writes until the cut reaches it.
			buf := make([]byte, 32<<10)
			var err error
			for err == nil {
				_, err = s.Write(buf)
			}
			if !errors.Is(err, sockmux.ErrStreamReset) {
				t.Errorf("write: %v, want ErrStreamReset", err)
			}
			if _, err := s.Read(buf); !errors.Is(err, sockmux.ErrStreamReset) {
				t.Errorf("read: %v, want ErrStreamReset, not EOF", err)
			}
		})
	}
}

func TestAcceptBacklogRefuses(t *testing.T) {
	testkit.CheckLeaks(t)
	scfg := sockmux.DefaultConfig()
	scfg.AcceptBacklog = 1
	client, server := sessions(t, pipePair, nil, scfg)
	first, err := client.Open(context.Background(), "one")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := client.Open(context.Background(), "two")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_, err = second.Read(make([]byte, 1))
	var open *sockmux.OpenError
	if !errors.Is(err, sockmux.ErrStreamReset) || !errors.Is(err, sockmux.ErrRefused) || !errors.As(err, &open) {
		t.Fatalf("second stream: %v, want an OpenError refusing it", err)
	}
	st, err := server.AcceptStream()
	if err != nil || st.Target() != "one" {
		t.Fatalf("accepted %v, %v; want the first stream", st, err)
	}
	st.Close()
}

func TestSessionEnd(t *testing.T) {
	testkit.CheckLeaks(t)
	client, server := sessions(t, pipePair, nil, nil)
	if err := client.Err(); err != nil {
		t.Fatalf("Err of a live session: %v", err)
	}
	client.Close()
	<-server.Done()
	if !errors.Is(server.Err(), sockmux.ErrSessionClosed) {
		t.Errorf("peer's Err: %v, want ErrSessionClosed", server.Err())
	}
	if _, err := server.AcceptStream(); !errors.Is(err, sockmux.ErrSessionClosed) {
		t.Errorf("Accept after the end: %v", err)
	}
	if _, err := client.Open(context.Background(), "x"); !errors.Is(err, sockmux.ErrSessionClosed) {
		t.Errorf("Open after Close: %v", err)
	}
	var _ net.Listener = server
}

// TestKeyMismatchOverPipe: over a carrier with no buffering (net.Pipe),
// a keyed side and an unkeyed one both fail their handshake with a
// reason, without waiting out the handshake timeout (an hour here): each
// side's last writes, which the other no longer reads, get a second.
func TestKeyMismatchOverPipe(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, keyedClient := range []bool{true, false} {
		testkit.CheckLeaks(t)
		ccfg, scfg := sockmux.DefaultConfig(), sockmux.DefaultConfig()
		ccfg.HandshakeTimeout, scfg.HandshakeTimeout = time.Hour, time.Hour
		if keyedClient {
			ccfg.Key = key
		} else {
			scfg.Key = key
		}
		cc, sc := net.Pipe()
		done := make(chan struct{})
		var cerr, serr error
		go func() {
			defer close(done)
			_, _, cerr, serr = startBoth(cc, sc, ccfg, scfg)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // a hang guard: the handshake timeout is an hour
			cc.Close()
			sc.Close()
			<-done
			t.Fatalf("keyed client %v: the handshakes were still waiting after 30 s", keyedClient)
		}
		if cerr == nil || serr == nil {
			t.Errorf("keyed client %v: client %v, server %v; want both to fail", keyedClient, cerr, serr)
		}
	}
}

func TestKeys(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	id, err := identity.Generate("server")
	if err != nil {
		t.Fatal(err)
	}
	cid, err := identity.Generate("client")
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := identity.Generate("someone else")
	if err != nil {
		t.Fatal(err)
	}
	pub, wrongPub := id.Public, wrong.Public
	cases := []struct {
		name           string
		client, server func(*sockmux.Config)
		want           error // nil: the link comes up
	}{
		{"same key", func(c *sockmux.Config) { c.Key = key }, func(c *sockmux.Config) { c.Key = key }, nil},
		{"other key", func(c *sockmux.Config) { c.Key = key }, func(c *sockmux.Config) { c.Key = other }, engine.ErrAuth},
		{"pinned identity", func(c *sockmux.Config) { c.Identity, c.PeerKey = cid, &pub },
			func(c *sockmux.Config) { c.Identity = id }, nil},
		{"wrong pin", func(c *sockmux.Config) { c.Identity, c.PeerKey = cid, &wrongPub },
			func(c *sockmux.Config) { c.Identity = id }, engine.ErrAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			ccfg, scfg := sockmux.DefaultConfig(), sockmux.DefaultConfig()
			ccfg.HandshakeTimeout, scfg.HandshakeTimeout = 2*time.Second, 2*time.Second
			tc.client(ccfg)
			tc.server(scfg)
			cc, sc := tcpPair(t)
			client, server, cerr, serr := startBoth(cc, sc, ccfg, scfg)
			if tc.want == nil {
				if cerr != nil || serr != nil {
					t.Fatalf("client: %v; server: %v", cerr, serr)
				}
				defer client.Close()
				defer server.Close()
				c, s := streamPair(t, client, server, "secret")
				go func() { io.Copy(s, s); s.Close() }()
				testkit.EchoRoundTrip(t, c, 1, 64<<10)
				c.Close()
				return
			}
			if !errors.Is(cerr, tc.want) {
				t.Errorf("client: %v, want %v", cerr, tc.want)
			}
			if serr == nil {
				t.Errorf("server came up")
			}
		})
	}
}
