package actors

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

func newIdentity(t *testing.T) *identity.PrivateKey {
	t.Helper()
	k, err := identity.Generate("")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func authorizedKeys(t *testing.T, lines ...string) *identity.AuthorizedKeys {
	t.Helper()
	ak, err := identity.ParseAuthorizedKeys([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return ak
}

// failed waits for the node to give up, and returns why.
func (s *side) failed(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.n.Failed():
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the node did not give up")
		return nil
	}
}

func linkStatus(t *testing.T, n *Node) LinkStatus {
	t.Helper()
	links := n.Status().Links
	if len(links) != 1 {
		t.Fatalf("%d links in the status, want 1", len(links))
	}
	return links[0]
}

// TestIdentityAdmitsListedKey: a listener with authorized keys admits a
// listed key; the link is authenticated both ways, carries a stream, and
// the listener's log and status call the peer by its name=.
func TestIdentityAdmitsListedKey(t *testing.T) {
	lk, dk := newIdentity(t), newIdentity(t)
	echo := testkit.Echo(t)
	a, b := startLink(t,
		Config{Identity: lk, AuthorizedKeys: authorizedKeys(t, `name="bee" `+dk.Public.String())},
		Config{Identity: dk, PeerKey: &lk.Public, FailFast: true, Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: echo}}}, nil)
	a.waitUp(t)
	b.waitUp(t)
	testkit.EchoRoundTrip(t, testkit.Dial(t, b.n.ForwardAddrs()[0]), 1, 64<<10)
	as := linkStatus(t, a.n)
	if as.Name != "bee" || as.Peer != "bee" || as.PeerKey != dk.Public.String() || !as.Authenticated {
		t.Fatalf("listener's status: %+v, want peer and name bee, the dialler's key, authenticated", as)
	}
	if bs := linkStatus(t, b.n); bs.PeerKey != lk.Public.String() || !bs.Authenticated || bs.Name != "" {
		t.Fatalf("dialler's status: %+v, want the listener's key, authenticated", bs)
	}
	up := a.log.Wait(t, time.Second, "link up", func(r testkit.Record) bool { return r.Msg == "link up" })
	if up.Attrs["peer"] != "bee" || up.Attrs["encrypted"] != true {
		t.Fatalf("listener's link up line: %v, want peer=bee, encrypted", up.Attrs)
	}
}

// TestIdentityRefusesUnlistedKey: a key not in the authorized keys is
// refused, with the reason on both sides; the dialler gives up (a
// permanent error).
func TestIdentityRefusesUnlistedKey(t *testing.T) {
	lk, dk, other := newIdentity(t), newIdentity(t), newIdentity(t)
	a, b := startLink(t,
		Config{Identity: lk, AuthorizedKeys: authorizedKeys(t, other.Public.String())},
		Config{Identity: dk, PeerKey: &lk.Public, FailFast: true}, nil)
	aerr := a.handshakeError(t)
	if !errors.Is(aerr, identity.ErrNotAuthorized) || !strings.Contains(aerr.Error(), dk.Public.String()) {
		t.Fatalf("listener: %v, want ErrNotAuthorized naming the key", aerr)
	}
	berr := b.failed(t)
	if !errors.Is(berr, engine.ErrPeerRefused) || !errors.Is(berr, engine.ErrAuth) || !strings.Contains(berr.Error(), "not in the authorized keys") {
		t.Fatalf("dialler: %v, want the listener's refusal with its reason", berr)
	}
}

// TestIdentityNoIdentity: a dialler with no identity, to a listener with
// authorized keys, is refused on both sides.
func TestIdentityNoIdentity(t *testing.T) {
	lk := newIdentity(t)
	a, b := startLink(t,
		Config{Identity: lk, AuthorizedKeys: authorizedKeys(t, newIdentity(t).Public.String())},
		Config{FailFast: true}, nil)
	if err := a.handshakeError(t); !errors.Is(err, engine.ErrAuth) {
		t.Fatalf("listener: %v, want ErrAuth", err)
	}
	if err := b.failed(t); !errors.Is(err, engine.ErrNoLocalIdentity) {
		t.Fatalf("dialler: %v, want ErrNoLocalIdentity", err)
	}
}

// TestIdentityPinMismatch: a listener whose key is not the pinned one is
// refused by the dialler, and the listener is told why.
func TestIdentityPinMismatch(t *testing.T) {
	lk, dk, other := newIdentity(t), newIdentity(t), newIdentity(t)
	a, b := startLink(t, Config{Identity: lk}, Config{Identity: dk, PeerKey: &other.Public, FailFast: true}, nil)
	berr := b.failed(t)
	if !errors.Is(berr, identity.ErrHostKeyMismatch) || !strings.Contains(berr.Error(), lk.Public.String()) {
		t.Fatalf("dialler: %v, want ErrHostKeyMismatch naming the key presented", berr)
	}
	aerr := a.handshakeError(t)
	if !errors.Is(aerr, engine.ErrPeerRefused) || !strings.Contains(aerr.Error(), "does not match the pinned key") {
		t.Fatalf("listener: %v, want the dialler's refusal with its reason", aerr)
	}
}

// TestIdentityUnknownKey: with no pin, the first connection refuses and
// names the listener's key; with --trust-new it records the key and
// connects; then the recorded key is pinned: a node with the file and no
// --trust-new connects, and a mismatch is refused even with --trust-new.
func TestIdentityUnknownKey(t *testing.T) {
	lk, dk := newIdentity(t), newIdentity(t)
	_, b := startLink(t, Config{Identity: lk}, Config{Identity: dk, FailFast: true}, nil)
	err := b.failed(t)
	if !errors.Is(err, identity.ErrUnknownHostKey) || !strings.Contains(err.Error(), "--peer-key '"+lk.Public.String()+"'") {
		t.Fatalf("first connection: %v, want ErrUnknownHostKey with the key to pin", err)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	_, b = startLink(t, Config{Identity: lk}, Config{Identity: dk, FailFast: true, KnownHosts: kh}, nil)
	if err := b.failed(t); !errors.Is(err, identity.ErrUnknownHostKey) || !strings.Contains(err.Error(), "--trust-new") {
		t.Fatalf("known hosts without --trust-new: %v, want ErrUnknownHostKey suggesting --trust-new", err)
	}
	if data, _ := os.ReadFile(kh); len(data) != 0 {
		t.Fatalf("a refused key was recorded: %q", data)
	}
	a, b := startLink(t, Config{Identity: lk}, Config{Identity: dk, FailFast: true, KnownHosts: kh, TrustNew: true}, nil)
	a.waitUp(t)
	b.waitUp(t)
	data, err := os.ReadFile(kh)
	if err != nil || !strings.Contains(string(data), lk.Public.String()) || strings.Count(string(data), "\n") != 1 {
		t.Fatalf("known hosts after --trust-new: %q %v, want one line with the listener's key", data, err)
	}
	host := strings.Fields(string(data))[0]
	if !linkStatus(t, b.n).Authenticated {
		t.Fatal("a link to a trusted key is not authenticated")
	}
	// The key recorded pins the listener: another node with the file and
	// no --trust-new connects to it.
	again := dialAlso(t, listenAddrOf(t, a), Config{Identity: dk, FailFast: true, KnownHosts: kh})
	again.waitUp(t)
	// A known address that shows another key is refused, --trust-new or
	// not, and the file is left as it was.
	if err := os.WriteFile(kh, fmt.Appendf(nil, "%s %s\n", host, newIdentity(t).Public), 0o600); err != nil {
		t.Fatal(err)
	}
	changed := dialAlso(t, listenAddrOf(t, a), Config{Identity: dk, FailFast: true, KnownHosts: kh, TrustNew: true})
	if err := changed.failed(t); !errors.Is(err, identity.ErrHostKeyMismatch) {
		t.Fatalf("a known address with another key: %v, want ErrHostKeyMismatch", err)
	}
	if after, _ := os.ReadFile(kh); strings.Count(string(after), "\n") != 1 {
		t.Fatalf("known hosts changed by a refused key: %q", after)
	}
}

// TestIdentityPermissions: permit-target and permit-listen refuse what
// they do not allow, where this side's own policy would allow it (any
// target for an authenticated peer, loopback -R), and let through what
// they allow.
func TestIdentityPermissions(t *testing.T) {
	lk, dk := newIdentity(t), newIdentity(t)
	allowed, denied := testkit.Echo(t), testkit.Echo(t)
	line := fmt.Sprintf(`permit-target="%s",permit-listen="127.0.0.1:1" %s`, allowed, dk.Public)
	a, b := startLink(t,
		Config{Identity: lk, AuthorizedKeys: authorizedKeys(t, line)},
		Config{Identity: dk, PeerKey: &lk.Public, FailFast: true,
			Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: allowed}, {Bind: "127.0.0.1:0", Target: denied}},
			Remotes:  []forward.Forward{{Bind: "127.0.0.1:2", Target: allowed}}}, nil)
	a.waitUp(t)
	b.waitUp(t)
	if p := a.n.env.policies(); p.AllowTargets != nil || !p.AllowListen.Allows("127.0.0.1:2") {
		t.Fatal("the listener's own policy would refuse: the test proves nothing")
	}
	addrs := b.n.ForwardAddrs()
	testkit.EchoRoundTrip(t, testkit.Dial(t, addrs[0]), 1, 4<<10)
	// The refused stream resets the client's connection, so soon on
	// loopback that the dial itself may already see the reset.
	if c, err := net.Dial("tcp", addrs[1].String()); err == nil {
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a -L to a target permit-target does not allow carried data")
		}
		c.Close()
	} else if !testkit.IsReset(err) {
		t.Fatal(err)
	}
	r := a.log.Wait(t, 5*time.Second, "the stream refusal", func(r testkit.Record) bool { return r.Msg == "stream refused" })
	if reason := fmt.Sprint(r.Attrs["reason"]); !strings.Contains(reason, "permit-target") || r.Attrs["target"] != denied {
		t.Fatalf("listener's refusal: %v, want the target refused by permit-target", r.Attrs)
	}
	r = b.log.Wait(t, 5*time.Second, "the -R refusal", func(r testkit.Record) bool { return r.Msg == "reverse forward refused by the peer" })
	if reason := fmt.Sprint(r.Attrs["reason"]); !strings.Contains(reason, "permit-listen") {
		t.Fatalf("dialler's -R refusal: %v, want permit-listen named", r.Attrs)
	}
	a.log.Wait(t, 5*time.Second, "the listener's -R refusal", func(r testkit.Record) bool {
		return r.Msg == "reverse forward refused" && strings.Contains(fmt.Sprint(r.Attrs["reason"]), "permit-listen")
	})
}

// TestIdentityReloadRemovesKey: authorized keys replaced without one key
// close that key's link, with the reason on both sides, and leave the
// other's link and its stream as they were.
func TestIdentityReloadRemovesKey(t *testing.T) {
	lk, k1, k2 := newIdentity(t), newIdentity(t), newIdentity(t)
	echo := testkit.Echo(t)
	both := authorizedKeys(t, `name="one" `+k1.Public.String(), `name="two" `+k2.Public.String())
	a, b1 := startLink(t, Config{Identity: lk, AuthorizedKeys: both},
		Config{Identity: k1, PeerKey: &lk.Public, FailFast: true}, nil)
	a.waitUp(t)
	b1.waitUp(t)
	b2 := dialAlso(t, listenAddrOf(t, a), Config{Identity: k2, PeerKey: &lk.Public, FailFast: true, Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: echo}}})
	a.waitUp(t)
	b2.waitUp(t)
	c := testkit.Dial(t, b2.n.ForwardAddrs()[0])
	echoLine(t, c, "before the reload")

	p := *a.n.env.policies()
	p.AuthorizedKeys = authorizedKeys(t, `name="two" `+k2.Public.String())
	a.n.SetPolicies(p)
	select {
	case ev := <-b1.up:
		if ev.Up {
			t.Fatal("the removed key's link came up instead of going down")
		}
		if !strings.Contains(fmt.Sprint(ev.Err), "no longer authorizes your key") {
			t.Fatalf("the removed key's link went down with %v, want the listener's reason", ev.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the removed key's link did not go down")
	}
	a.log.Wait(t, 5*time.Second, "the listener to close the link", func(r testkit.Record) bool {
		return r.Msg == "peer's key removed from the authorized keys; closing its link" && r.Attrs["peer"] == "one"
	})
	a.log.Wait(t, 5*time.Second, "one's link down at the listener", func(r testkit.Record) bool {
		return r.Msg == "link down" && r.Attrs["peer"] == "one"
	})
	echoLine(t, c, "after the reload") // the other key's stream goes on
	var up []string
	for _, ls := range a.n.Status().Links {
		if ls.Up {
			up = append(up, ls.Name)
		}
	}
	if len(up) != 1 || up[0] != "two" {
		t.Fatalf("links up at the listener: %v, want [two]", up)
	}
	select {
	case ev := <-b2.up:
		t.Fatalf("the other key's link changed: %+v", ev)
	default:
	}
}

// dialAlso starts one more dialling node, to addr.
func dialAlso(t *testing.T, addr string, c Config) *side {
	t.Helper()
	s := &side{log: testkit.NewRecorder(), up: make(chan LinkEvent, 16)}
	c.Logger = slog.New(s.log)
	c.OnLink = func(ev LinkEvent) { s.up <- ev }
	c.Backoff = time.Hour
	n, err := NewNode(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	s.n = n
	d, err := carriers.NewDialer(addr)
	if err != nil {
		t.Fatal(err)
	}
	n.Connect(d)
	return s
}

// echoLine sends msg on a stream to an echo server and reads it back.
func echoLine(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q, %v; want %q", got, err, msg)
	}
}

// TestIdentityPinnedListenerWithoutIdentity: a dialler that pins the
// listener (a key, or a known hosts file) refuses a listener that shows no
// identity at all, instead of falling back to a handshake that proves
// nothing about it; the listener is told.
func TestIdentityPinnedListenerWithoutIdentity(t *testing.T) {
	dk, lk := newIdentity(t), newIdentity(t)
	for name, c := range map[string]Config{
		"peer key":    {Identity: dk, PeerKey: &lk.Public, FailFast: true},
		"known hosts": {Identity: dk, KnownHosts: filepath.Join(t.TempDir(), "kh"), TrustNew: true, FailFast: true},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := startLink(t, Config{}, c, nil)
			if err := b.failed(t); !errors.Is(err, engine.ErrNoPeerIdentity) {
				t.Fatalf("dialler: %v, want ErrNoPeerIdentity", err)
			}
			if err := a.handshakeError(t); !errors.Is(err, engine.ErrNoLocalIdentity) {
				t.Fatalf("listener: %v, want ErrNoLocalIdentity", err)
			}
		})
	}
}
