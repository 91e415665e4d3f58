package actors

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// hello and greeting are testkit's Greeter and Greeting.
func hello(t testing.TB, greeting string) string { return testkit.Greeter(t, greeting) }

func greeting(t testing.TB, addr string) string { t.Helper(); return testkit.Greeting(t, addr) }

func remoteListening(t testing.TB, log *testkit.Recorder, n int) {
	t.Helper()
	log.WaitN(t, 10*time.Second, "the peer listening for our -R", n, func(r testkit.Record) bool {
		return r.Msg == "reverse forward listening"
	})
}

// TestRemoteForward: -R from either side, two of them side by side, each
// routed to its own target (the seed's per-port routing).
func TestRemoteForward(t *testing.T) {
	for _, side := range []string{"dialler asks", "listener asks"} {
		t.Run(side, func(t *testing.T) {
			telnet, web := hello(t, "telnet here"), hello(t, "web here")
			p1, p2 := testkit.FreeAddr(t), testkit.FreeAddr(t)
			remotes := func(c *Config) {
				c.Remotes = []forward.Forward{{Bind: p1, Target: telnet}, {Bind: p2, Target: web}}
			}
			cfg := pairConfig{B: remotes}
			if side == "listener asks" {
				cfg = pairConfig{A: remotes}
			}
			p := newTestPair(t, cfg)
			asker := p.BLog
			if side == "listener asks" {
				asker = p.ALog
			}
			remoteListening(t, asker, 2)
			if got := greeting(t, p1); got != "telnet here" {
				t.Errorf("port 1 reached %q", got)
			}
			if got := greeting(t, p2); got != "web here" {
				t.Errorf("port 2 reached %q", got)
			}
		})
	}
}

// TestRemoteForwardAcrossDrop: the peer releases the port when the link
// drops, and listens again when it comes back.
func TestRemoteForwardAcrossDrop(t *testing.T) {
	echo := testkit.Echo(t)
	port := testkit.FreeAddr(t)
	p := newTestPair(t, pairConfig{Proxy: true, Backoff: time.Hour, ResumeWindow: -1,
		B: func(c *Config) { c.Remotes = []forward.Forward{{Bind: port, Target: echo}} }})
	remoteListening(t, p.BLog, 1)
	testkit.EchoRoundTrip(t, testkit.Dial(t, mustAddr(t, port)), 1, 1<<20)
	p.Proxy.Cut()
	waitFor(t, "the port to be released", func() bool {
		c, err := net.Dial("tcp", port)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	p.B.Redial()
	<-p.Ups
	remoteListening(t, p.BLog, 2)
	testkit.EchoRoundTrip(t, testkit.Dial(t, mustAddr(t, port)), 2, 1<<20)
}

func mustAddr(t testing.TB, s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRemoteForwardRefused: the peer refuses a bind its --allow-listen does
// not allow, and one it cannot make; both sides log why, and with
// ExitOnForwardFailure the asking side reports it as fatal.
func TestRemoteForwardRefused(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		name     string
		bind     string
		peerWant error  // in the listening side's log
		text     string // in the requester's error
	}{
		{"not allowed", "0.0.0.0:0", nil, "the peer's --allow-listen"},
		{"in use", busy.Addr().String(), syscall.EADDRINUSE, "address already in use"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPair(t, pairConfig{B: func(c *Config) {
				c.Remotes = []forward.Forward{{Bind: tc.bind, Target: "127.0.0.1:9"}}
				c.ExitOnForwardFailure = true
			}})
			select {
			case err := <-p.B.Failed():
				if !errors.Is(err, errForwardRefused) {
					t.Fatalf("fatal error %v, want ErrForwardRefused", err)
				}
				if !strings.Contains(err.Error(), tc.text) {
					t.Fatalf("the requester's error %q does not say %q", err, tc.text)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no fatal forward failure")
			}
			p.ALog.Wait(t, 5*time.Second, "the refusal on the listening side", func(r testkit.Record) bool {
				if r.Msg != "reverse forward refused" {
					return false
				}
				err, _ := r.Attrs["reason"].(error)
				return tc.peerWant == nil || errors.Is(err, tc.peerWant)
			})
		})
	}
}

// TestRemoteForwardDialFailed: a -R whose target refuses resets its client
// at the hub, and the hub's log names the -R by where it listens, not by
// the forward's id alone.
func TestRemoteForwardDialFailed(t *testing.T) {
	dead, port := testkit.FreeAddr(t), testkit.FreeAddr(t)
	p := newTestPair(t, pairConfig{B: func(c *Config) { c.Remotes = []forward.Forward{{Bind: port, Target: dead}} }})
	remoteListening(t, p.BLog, 1)
	if err := testkit.DialClosed(t, port); !testkit.IsReset(err) {
		t.Fatalf("the -R's client got %v; want its connection reset", err)
	}
	r := p.ALog.Wait(t, 5*time.Second, "the hub's log of the refused open", func(r testkit.Record) bool {
		return r.Msg == "peer could not open stream"
	})
	if target, _ := r.Attrs["target"].(string); !strings.Contains(target, port) {
		t.Errorf("the hub logged target %q for its -R listening at %s", target, port)
	}
}
