package sockmux_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/testkit"
	"golang.org/x/net/nettest"
)

func TestPeerConfigValidate(t *testing.T) {
	id := mustIdentity(t)
	pub := id.Public
	cases := []struct {
		name string
		edit func(c *sockmux.PeerConfig)
		ok   bool
	}{
		{"zero", func(c *sockmux.PeerConfig) {}, true},
		{"no keepalive, no resuming", func(c *sockmux.PeerConfig) { c.Keepalive, c.ResumeWindow = -1, -1 }, true},
		{"16 carriers", func(c *sockmux.PeerConfig) { c.Carriers = sockmux.MaxCarriers }, true},
		{"17 carriers", func(c *sockmux.PeerConfig) { c.Carriers = sockmux.MaxCarriers + 1 }, false},
		{"negative carriers", func(c *sockmux.PeerConfig) { c.Carriers = -1 }, false},
		{"negative open timeout", func(c *sockmux.PeerConfig) { c.OpenTimeout = -time.Second }, false},
		{"negative max streams", func(c *sockmux.PeerConfig) { c.MaxStreams = -1 }, false},
		{"max window below window", func(c *sockmux.PeerConfig) { c.Window, c.MaxWindow = 1<<20, 1<<16 }, false},
		{"peer key without identity", func(c *sockmux.PeerConfig) { c.PeerKey = &pub }, false},
		{"trust new without known hosts", func(c *sockmux.PeerConfig) { c.Identity, c.TrustNew = id, true }, false},
		{"peer key with identity", func(c *sockmux.PeerConfig) { c.PeerKey, c.Identity = &pub, id }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c sockmux.PeerConfig
			tc.edit(&c)
			err := c.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, sockmux.ErrBadConfig) {
				t.Fatalf("Validate() = %v, not an ErrBadConfig", err)
			}
			if c.Identity == nil && c.PeerKey != nil && !errors.Is(err, sockmux.ErrNeedIdentity) {
				t.Fatalf("Validate() = %v, not an ErrNeedIdentity", err)
			}
			p, err := sockmux.NewPeer(&c)
			switch {
			case !tc.ok && !errors.Is(err, sockmux.ErrBadConfig):
				t.Fatalf("NewPeer with a bad config = %v, want ErrBadConfig", err)
			case tc.ok && err != nil:
				t.Fatalf("NewPeer: %v", err)
			case tc.ok:
				p.Close()
			}
		})
	}
	testkit.CheckLeaks(t)
}

// TestPeerForwards runs what `sockmux listen` and `sockmux connect -L -R`
// run, as a program embeds it: two Peers, keyed, one dialling the other
// with a -L and a -R, and a stream dialled by hand.
func TestPeerForwards(t *testing.T) {
	echo := testkit.Echo(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	rBind := testkit.FreeAddr(t)
	bound := make(chan sockmux.ReverseBind, 4)
	hub, hubAddr := servingPeer(t, &sockmux.PeerConfig{Key: key, BindWatcher: func(rb sockmux.ReverseBind) { bound <- rb }})

	lf, err := sockmux.ParseLocal("0:"+echo, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	rf, err := sockmux.ParseRemote(rBind + ":" + echo)
	if err != nil {
		t.Fatal(err)
	}
	up := make(chan sockmux.LinkEvent, 4)
	edge := dialingPeer(t, &sockmux.PeerConfig{Key: key, Forwards: []sockmux.Forward{lf}, Remotes: []sockmux.Forward{rf},
		OnLink: func(ev sockmux.LinkEvent) { up <- ev }}, hubAddr)
	if ev := <-up; !ev.Up {
		t.Fatalf("first link event %+v, want up", ev)
	}

	// -L: the edge's listener, through the hub, to the echo server.
	testkit.EchoRoundTrip(t, testkit.Dial(t, edge.ForwardAddrs()[0]), 1, 1<<20)

	// -R: the hub listens on rBind once the edge's BIND is through.
	if rb := <-bound; rb.Addr != rBind || rb.Members != 1 {
		t.Fatalf("bound %+v, want %s with one member", rb, rBind)
	}
	c, err := net.Dial("tcp", rBind)
	if err != nil {
		t.Fatal(err)
	}
	testkit.EchoRoundTrip(t, c, 2, 1<<20)
	c.Close()

	// A stream by hand, as --via rides on one.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := edge.DialStream(ctx, echo)
	if err != nil {
		t.Fatal(err)
	}
	testkit.EchoRoundTrip(t, st, 3, 1<<20) // half-closed: CloseWrite, then the echo to its end
	st.Close()

	// A stream cut short reads as a reset, not as a clean end.
	resetter := testkit.Serve(t, func(c net.Conn) {
		c.Read(make([]byte, 1))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	st, err = edge.DialStream(ctx, resetter)
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("x"))
	if _, err := io.ReadAll(st); !errors.Is(err, sockmux.ErrStreamReset) {
		t.Fatalf("reading a stream its target reset = %v, want ErrStreamReset", err)
	}
	st.Close()

	if got := edge.Status(); len(got.Links) != 1 {
		t.Fatalf("edge status shows %d links, want 1", len(got.Links))
	}
	if n := hub.Stats().StreamsOpened.Load(); n < 3 {
		t.Fatalf("hub counted %d streams, want at least 3", n)
	}
	// A refused target is an *OpenError, not a hang or a clean end.
	hub.SetPolicies(sockmux.Policies{AllowTargets: mustPolicy(t, "127.0.0.1:1")})
	var oe *sockmux.OpenError
	if _, err := edge.DialStream(ctx, echo); !errors.As(err, &oe) {
		t.Fatalf("DialStream to a target the policy refuses = %v, want an *OpenError", err)
	}

	if err := edge.Close(); err != nil {
		t.Fatal(err)
	}
	if err := edge.Close(); !errors.Is(err, sockmux.ErrPeerClosed) {
		t.Fatalf("second Close = %v, want ErrPeerClosed", err)
	}
	if err := hub.Shutdown(time.Second); err != nil {
		t.Fatal(err)
	}
	testkit.CheckLeaks(t)
}

func mustPolicy(t testing.TB, patterns ...string) *sockmux.TargetPolicy {
	t.Helper()
	p, err := sockmux.ParseTargetPolicy(patterns...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustIdentity(t testing.TB) *identity.PrivateKey {
	t.Helper()
	id, err := identity.Generate("peer")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDialStreamIsNetConn: what Peer.DialStream returns passes
// nettest.TestConn, the far end being the target's accepted socket.
func TestDialStreamIsNetConn(t *testing.T) {
	_, hubAddr := servingPeer(t, nil)
	edge := dialingPeer(t, nil, hubAddr)
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := target.Accept()
			accepted <- c
		}()
		c1, err = edge.DialStream(ctx, target.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-accepted
		if c2 == nil {
			c1.Close()
			return nil, nil, nil, errors.New("the target accepted nothing")
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// servingPeer starts a Peer with cfg serving links on a loopback port,
// closed when the test ends, and says where.
func servingPeer(t testing.TB, cfg *sockmux.PeerConfig) (*sockmux.Peer, string) {
	t.Helper()
	p, err := sockmux.NewPeer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	p.Serve(ln)
	t.Cleanup(func() { p.Close() })
	return p, ln.Addr().String()
}

// dialingPeer starts a Peer with cfg keeping a link to addr, closed when
// the test ends.
func dialingPeer(t testing.TB, cfg *sockmux.PeerConfig, addr string) *sockmux.Peer {
	t.Helper()
	p, err := sockmux.NewPeer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	d, err := carriers.NewDialer(addr)
	if err != nil {
		t.Fatal(err)
	}
	p.Connect(d)
	return p
}
