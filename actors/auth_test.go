package actors

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// side is one node of a test link.
type side struct {
	n   *Node
	log *testkit.Recorder
	up  chan LinkEvent
}

// startLink starts A (listening) and B (dialling A) with the given
// configurations; before starting B, hook may adjust it. It does not wait
// for the link: the test decides what to wait for.
func startLink(t *testing.T, ca, cb Config, hook func(*Node)) (a, b *side) {
	t.Helper()
	testkit.CheckLeaks(t)
	mk := func(c Config) *side {
		s := &side{log: testkit.NewRecorder(), up: make(chan LinkEvent, 16)}
		c.Logger = slog.New(s.log)
		c.OnLink = func(ev LinkEvent) { s.up <- ev }
		if c.Backoff == 0 {
			c.Backoff = time.Hour // a failed handshake is not retried during the test
		}
		n, err := NewNode(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		s.n = n
		return s
	}
	a, b = mk(ca), mk(cb)
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.n.Serve(ln)
	if hook != nil {
		hook(b.n)
	}
	d, _ := carriers.NewDialer(ln.Addr().String())
	b.n.Connect(d)
	return a, b
}

func (s *side) waitUp(t *testing.T) {
	t.Helper()
	select {
	case ev := <-s.up:
		if !ev.Up {
			t.Fatalf("link went down: %v", ev.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("link did not come up")
	}
}

// handshakeError waits for the side's "link handshake failed" log line and
// returns its error.
func (s *side) handshakeError(t *testing.T) error {
	t.Helper()
	r := s.log.Wait(t, 10*time.Second, "link handshake failed", func(r testkit.Record) bool {
		return r.Msg == "link handshake failed"
	})
	err, _ := r.Attrs["err"].(error)
	return err
}

func TestAuthentication(t *testing.T) {
	key, other := []byte("a key both sides share"), []byte("a key only one side has")
	cases := []struct {
		name         string
		keyA, keyB   []byte
		skewB        time.Duration
		wantA, wantB error // nil: the link comes up
	}{
		{"same key", key, key, 0, nil, nil},
		{"no key", nil, nil, 0, nil, nil},
		{"wrong key", key, other, 0, engine.ErrKeyMismatch, engine.ErrKeyMismatch},
		{"no key on the dialler", key, nil, 0, engine.ErrNoPeerKey, engine.ErrNoLocalKey},
		{"no key on the listener", nil, key, 0, engine.ErrNoLocalKey, engine.ErrNoPeerKey},
		{"clock skew", key, key, 10 * time.Minute, engine.ErrClockSkew, engine.ErrClockSkew},
		{"clock skew inside the limit", key, key, 4 * time.Minute, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startLink(t, Config{Key: tc.keyA}, Config{Key: tc.keyB}, func(n *Node) {
				if tc.skewB != 0 {
					n.env.now = func() time.Time { return time.Now().Add(tc.skewB) }
				}
			})
			if tc.wantA == nil {
				a.waitUp(t)
				b.waitUp(t)
				rec := a.log.Wait(t, 5*time.Second, "link up", func(r testkit.Record) bool { return r.Msg == "link up" })
				if got := rec.Attrs["authenticated"]; got != (tc.keyA != nil) {
					t.Errorf("authenticated = %v, want %v", got, tc.keyA != nil)
				}
				return
			}
			for _, s := range []struct {
				name string
				side *side
				want error
			}{{"listener", a, tc.wantA}, {"dialler", b, tc.wantB}} {
				err := s.side.handshakeError(t)
				if !errors.Is(err, s.want) || !errors.Is(err, engine.ErrAuth) {
					t.Errorf("%s: handshake error %v, want %v", s.name, err, s.want)
				}
			}
			if a.n.Stats().linksUp.Load() != 0 || b.n.Stats().linksUp.Load() != 0 {
				t.Error("a link came up")
			}
		})
	}
}

// TestReplayedHello: a HELLO recorded from a good handshake and sent again
// is refused by name.
func TestReplayedHello(t *testing.T) {
	key := []byte("shared, 16 bytes or more")
	a, _ := startLink(t, Config{Key: key}, Config{Key: key}, nil)
	a.waitUp(t)
	// An attacker who recorded a dialler's HELLO sends it again. Make one
	// with the real encoder, as a dialler would, and send it twice.
	hello := &engine.Hello{MinVersion: 1, MaxVersion: 1, Role: engine.RoleDialer, Capabilities: engine.CapPSK,
		MaxPayload: engine.DefaultMaxPayload, InitialWindow: engine.DefaultWindow}
	engine.AddFreshness(hello, time.Now())
	payload := engine.AppendHello(nil, hello)
	f := &engine.Frame{Type: engine.TypeHello, Payload: engine.GetBuffer(len(payload))}
	copy(f.Payload.B, payload)
	wire := engine.AppendFrame(nil, f, 1)
	f.Release()
	lnAddr := listenAddrOf(t, a)
	for range 2 {
		c, err := net.Dial("tcp", lnAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(wire)
		c.(*net.TCPConn).CloseWrite()                       // no AUTH follows
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
		io.Copy(io.Discard, c)                              // until the listener closes
		c.Close()
	}
	a.log.Wait(t, 10*time.Second, "a replayed HELLO refused by name", func(r testkit.Record) bool {
		err, _ := r.Attrs["err"].(error)
		return r.Msg == "link handshake failed" && errors.Is(err, engine.ErrReplay)
	})
}

// listenAddrOf finds the address A listens on for links from its log.
func listenAddrOf(t *testing.T, s *side) string {
	r := s.log.Wait(t, 5*time.Second, "listening for links", func(r testkit.Record) bool { return r.Msg == "listening for links" })
	return r.Attrs["addr"].(string)
}

// TestTargetPolicy: the dialling side refuses targets outside its policy,
// with OPEN_FAIL logged on both sides, without dialling them.
func TestTargetPolicy(t *testing.T) {
	echo := testkit.Echo(t)
	cases := []struct {
		name   string
		key    []byte
		allow  []string
		target string
		ok     bool
	}{
		{"unauthenticated peer, loopback target", nil, nil, echo, true},
		{"unauthenticated peer, other target", nil, nil, "192.0.2.1:9", false},
		{"authenticated peer, policy allows", []byte("k, sixteen bytes long"), []string{"127.0.0.0/8:*"}, echo, true},
		{"policy refuses", []byte("k, sixteen bytes long"), []string{"127.0.0.2:*"}, echo, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var pol *forward.TargetPolicy
			if tc.allow != nil {
				pol = forward.MustTargetPolicy(tc.allow...)
			}
			a, b := startLink(t, Config{Key: tc.key, AllowTargets: pol},
				Config{Key: tc.key, Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: tc.target}}}, nil)
			a.waitUp(t)
			b.waitUp(t)
			if !tc.ok {
				if err := testkit.DialClosed(t, b.n.ForwardAddrs()[0].String()); !testkit.IsReset(err) {
					t.Fatalf("client got %v: want it reset", err)
				}
			} else {
				c, err := net.Dial("tcp", b.n.ForwardAddrs()[0].String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				testkit.EchoRoundTrip(t, c, 1, 64<<10)
				return
			}
			a.log.Wait(t, 5*time.Second, "refusal on the dialling side", func(r testkit.Record) bool {
				return r.Msg == "stream refused" && r.Attrs["target"] == tc.target
			})
			b.log.Wait(t, 5*time.Second, "refusal on the opening side", func(r testkit.Record) bool {
				return r.Msg == "peer could not open stream" && r.Attrs["target"] == tc.target
			})
			if a.n.Stats().dialFailures.Load() != 0 {
				t.Error("a refused target was dialled")
			}
		})
	}
}

// TestMaxStreams: past --max-streams, OPENs are refused and the streams
// already open carry on.
func TestMaxStreams(t *testing.T) {
	echo := testkit.Echo(t)
	a, b := startLink(t, Config{MaxStreams: 2}, Config{Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: echo}}}, nil)
	a.waitUp(t)
	b.waitUp(t)
	addr := b.n.ForwardAddrs()[0].String()
	var open []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("x")); err != nil { // the echo proves the stream is up
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	if err := testkit.DialClosed(t, addr); !testkit.IsClosed(err) {
		t.Fatalf("third stream got %v: want it refused", err)
	}
	a.log.Wait(t, 5*time.Second, "the limit named in the refusal", func(r testkit.Record) bool {
		return r.Msg == "stream refused"
	})
	for i, c := range open {
		if _, err := c.Write([]byte("y")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("stream %d stopped after the refusal: %v", i, err)
		}
	}
}
