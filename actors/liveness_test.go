package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestPeerSilent: when the network goes silent, both sides drop the link
// within three keepalive intervals, and it comes back once the network
// does.
func TestPeerSilent(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{
		BForwards: []forward.Forward{fwd(t, echo)},
		Proxy:     true, Backoff: 10 * time.Millisecond, Keepalive: 20 * time.Millisecond,
		ResumeWindow: -1, // a silent carrier is the link's end
	})
	p.Proxy.Pause()
	for name, log := range map[string]*testkit.Recorder{"listener": p.ALog, "dialler": p.BLog} {
		log.Wait(t, 10*time.Second, name+" dropping a silent peer", func(r testkit.Record) bool {
			err, _ := r.Attrs["reason"].(error)
			return r.Msg == "link down" && errors.Is(err, errPeerSilent)
		})
	}
	p.Proxy.Resume()
	p.Proxy.Cut() // the stale carriers
	select {
	case <-p.Ups:
	case <-time.After(10 * time.Second):
		t.Fatal("the link did not come back")
	}
	testkit.EchoRoundTrip(t, testkit.Dial(t, p.B.ForwardAddrs()[0]), 1, 1<<20)
}

// TestOpenTimeout: a connection accepted while no link is up waits for
// one; if none comes within the open timeout, it is closed.
func TestOpenTimeout(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	linkAddr := testkit.FreeAddr(t)
	log := testkit.NewRecorder()
	b, err := NewNode(Config{Logger: slog.New(log), Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		OpenTimeout: 30 * time.Second, Forwards: []forward.Forward{fwd(t, echo)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	d, _ := carriers.NewDialer(linkAddr)
	b.Connect(d) // nothing listens there yet
	c := testkit.Dial(t, b.ForwardAddrs()[0])
	if _, err := c.Write([]byte("early bird")); err != nil {
		t.Fatal(err)
	}
	log.Wait(t, 10*time.Second, "a failed dial", func(r testkit.Record) bool { return r.Msg == "link dial failed" })
	// Now the peer appears; the waiting connection is carried.
	a, err := NewNode(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ln, err := carriers.Listen(linkAddr)
	if err != nil {
		t.Fatal(err)
	}
	a.Serve(ln)
	got := make([]byte, len("early bird"))
	c.SetReadDeadline(time.Now().Add(20 * time.Second)) // hang guard
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "early bird" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

func TestOpenTimeoutExpires(t *testing.T) {
	testkit.CheckLeaks(t)
	log := testkit.NewRecorder()
	b, err := NewNode(Config{Logger: slog.New(log), Backoff: time.Hour,
		OpenTimeout: 20 * time.Millisecond, Forwards: []forward.Forward{fwd(t, testkit.FreeAddr(t))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	d, _ := carriers.NewDialer(testkit.FreeAddr(t))
	b.Connect(d)
	c := testkit.Dial(t, b.ForwardAddrs()[0])
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
	if n, err := c.Read(make([]byte, 1)); n != 0 || !testkit.IsReset(err) {
		t.Fatalf("read %d, %v: want the connection reset (it got no stream: a clean end would say it ran its course)", n, err)
	}
	log.Wait(t, 5*time.Second, "the open timeout named", func(r testkit.Record) bool {
		return r.Msg == "no link within the open timeout; resetting connection"
	})
}

// TestRedialNow: a link waiting out a long backoff redials at once when
// asked (what SIGHUP does).
func TestRedialNow(t *testing.T) {
	p := newTestPair(t, pairConfig{Proxy: true, Backoff: time.Hour, ResumeWindow: -1})
	p.Proxy.Cut()
	p.BLog.Wait(t, 10*time.Second, "a redial scheduled an hour away", func(r testkit.Record) bool {
		return r.Msg == "link redial scheduled"
	})
	p.B.Redial()
	select {
	case <-p.Ups:
	case <-time.After(10 * time.Second):
		t.Fatal("no redial")
	}
}

// TestDrain: on shutdown, a stream in flight finishes intact; the peer is
// told GOAWAY with the reason.
func TestDrain(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}})
	c := testkit.Dial(t, p.B.ForwardAddrs()[0])
	first := testkit.Payload(1, 1<<20)
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(first))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.B.Shutdown(30 * time.Second)
	}()
	p.BLog.Wait(t, 10*time.Second, "draining", func(r testkit.Record) bool { return r.Msg == "draining the link" })
	// New connections are no longer accepted...
	if c2, err := net.Dial("tcp", p.B.ForwardAddrs()[0].String()); err == nil {
		c2.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
		if n, _ := c2.Read(make([]byte, 1)); n != 0 {
			t.Error("a new connection was carried during the drain")
		}
		c2.Close()
	}
	// ...but the open stream finishes.
	testkit.EchoRoundTrip(t, c, 2, 4<<20)
	wg.Wait()
	p.ALog.Wait(t, 10*time.Second, "the peer's GOAWAY as the reason", func(r testkit.Record) bool {
		err, _ := r.Attrs["reason"].(error)
		var ga *goAwayError
		return r.Msg == "link down" && errors.As(err, &ga) && ga.Reason.Code == engine.CodeShutdown && errors.Is(err, engine.ErrShutdown)
	})
}

// TestDialStream: a stream as a net.Conn, returned once the peer opened it;
// a target the peer refuses is an *OpenError with the peer's reason, and no
// link within the open timeout is errNoLink.
func TestDialStream(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{A: func(c *Config) { c.AllowTargets = forward.MustTargetPolicy(echo) }})
	c, err := p.B.DialStream(context.Background(), echo)
	if err != nil {
		t.Fatal(err)
	}
	msg := testkit.Payload(5, 100_000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo over DialStream: %v", err)
	}
	c.Close()
	_, err = p.B.DialStream(context.Background(), testkit.FreeAddr(t))
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Reason.Code != engine.CodeRefused || !errors.Is(err, engine.ErrRefused) {
		t.Fatalf("refused target: %v, want an OpenError with code refused that is engine.ErrRefused", err)
	}

	lonely, err := NewNode(Config{OpenTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer lonely.Close()
	_, err = lonely.DialStream(context.Background(), echo)
	var ne net.Error
	if !errors.Is(err, errNoLink) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("no link: %v, want ErrNoLink, a net.Error timeout", err)
	}
}

// TestShutdownEndsPendingHandshake: shutting a node down ends a carrier's
// HELLO exchange that is still waiting, instead of waiting out its timeout.
func TestShutdownEndsPendingHandshake(t *testing.T) {
	testkit.CheckLeaks(t)
	n, err := NewNode(Config{HandshakeTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.Serve(ln)
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, "the silent carrier's link", func() bool { return len(n.Status().Links) == 1 })
	done := make(chan struct{})
	// A drain of an hour: Shutdown waits for each link's answer up to
	// drain+3s, so only a link that ends its handshake at once lets it
	// return.
	go func() { n.Shutdown(time.Hour); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("Shutdown waited for a handshake with an hour to run")
	}
}
