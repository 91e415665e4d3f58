package actors

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestSetRemotesLive: a -R added while the link is up is bound by the
// peer at once, one removed is released by the peer (UNBIND), one kept
// keeps its port and id, and a connection to the removed one gets nothing.
func TestSetRemotesLive(t *testing.T) {
	testkit.CheckLeaks(t)
	kept, added, gone := hello(t, "kept"), hello(t, "added"), hello(t, "gone")
	pk, pa, pg := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	keptF, goneF := forward.Forward{Bind: pk, Target: kept}, forward.Forward{Bind: pg, Target: gone}
	p := newTestPair(t, pairConfig{B: func(c *Config) { c.Remotes = []forward.Forward{keptF, goneF} }})
	remoteListening(t, p.BLog, 2)
	if got := greeting(t, pg); got != "gone" {
		t.Fatalf("before the change, %s reached %q", pg, got)
	}

	addedF := forward.Forward{Bind: pa, Target: added}
	if a, r, _ := p.B.SetRemotes([]forward.Forward{keptF, addedF}); a != 1 || r != 1 {
		t.Fatalf("SetRemotes: %d added, %d removed; want 1 and 1", a, r)
	}
	remoteListening(t, p.BLog, 3)
	p.ALog.Wait(t, 10*time.Second, "the peer closing the removed -R", func(r testkit.Record) bool {
		return r.Msg == "reverse forward closed at the peer's request"
	})
	if got := greeting(t, pa); got != "added" {
		t.Errorf("the added -R reached %q", got)
	}
	if got := greeting(t, pk); got != "kept" {
		t.Errorf("the kept -R reached %q", got)
	}
	if c, err := net.Dial("tcp", pg); err == nil {
		c.Close()
		t.Errorf("the removed -R still accepts at the peer")
	}
	// Setting the same list again changes nothing.
	if a, r, _ := p.B.SetRemotes([]forward.Forward{keptF, addedF}); a != 0 || r != 0 {
		t.Errorf("SetRemotes of the same list: %d added, %d removed", a, r)
	}
}

// TestSetRemotesRetarget: a -R whose target alone changes keeps
// listening at the peer, under its id, with no BIND or UNBIND, and the
// next connection reaches the new target (a BIND of the same address
// before the UNBIND of the old was refused: "address already in use",
// and the port was lost).
func TestSetRemotesRetarget(t *testing.T) {
	testkit.CheckLeaks(t)
	a, b := hello(t, "aaaa"), hello(t, "bbbb")
	port := testkit.FreeAddr(t)
	p := newTestPair(t, pairConfig{B: func(c *Config) { c.Remotes = []forward.Forward{{Bind: port, Target: a}} }})
	remoteListening(t, p.BLog, 1)
	if got := greeting(t, port); got != "aaaa" {
		t.Fatalf("before the change, %s reached %q", port, got)
	}
	added, removed, retargeted := p.B.SetRemotes([]forward.Forward{{Bind: port, Target: b}})
	if added != 0 || removed != 0 || retargeted != 1 {
		t.Fatalf("SetRemotes: %d added, %d removed, %d retargeted; want 0, 0, 1", added, removed, retargeted)
	}
	if got := greeting(t, port); got != "bbbb" {
		t.Errorf("after the change, %s reached %q, want the new target", port, got)
	}
	for _, r := range p.ALog.Records() {
		if r.Msg == "reverse forward refused" {
			t.Errorf("the peer refused a BIND: %+v", r)
		}
	}
}

// TestSetPoliciesLive: a new --allow-target applies to the next stream the
// peer opens, and a new key to the next handshake, while the link that is
// up stays.
func TestSetPoliciesLive(t *testing.T) {
	testkit.CheckLeaks(t)
	one, two := hello(t, "one"), hello(t, "two")
	onlyOne, err := forward.ParseTargetPolicy(one)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("the key both sides hold, 32 bytes")
	p := newTestPair(t, pairConfig{
		A: func(c *Config) { c.AllowTargets, c.Key = onlyOne, key },
		B: func(c *Config) { c.Key = key },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.B.DialStream(ctx, two); err == nil {
		t.Fatal("a target outside --allow-target was dialled")
	}
	onlyTwo, _ := forward.ParseTargetPolicy(two)
	p.A.SetPolicies(Policies{AllowTargets: onlyTwo, Key: key})
	c, err := p.B.DialStream(ctx, two)
	if err != nil {
		t.Fatalf("after the policy changed: %v", err)
	}
	c.Close()
	if _, err := p.B.DialStream(ctx, one); err == nil {
		t.Fatal("the old policy's target is still dialled")
	}

	// A new key: the link that is up stays, a new handshake needs the key.
	p.A.SetPolicies(Policies{AllowTargets: onlyTwo, Key: []byte("a new key, 32 bytes long as well!")})
	if c, err := p.B.DialStream(ctx, two); err != nil {
		t.Fatalf("the link up before the key changed: %v", err)
	} else {
		c.Close()
	}
	other, err := NewNode(Config{Key: key, MaxRetries: 1, FailFast: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	d, err := carriers.NewDialer(p.LinkAddr)
	if err != nil {
		t.Fatal(err)
	}
	other.Connect(d)
	select {
	case err := <-other.Failed():
		if !errors.Is(err, engine.ErrAuth) {
			t.Fatalf("a handshake with the old key: %v, want ErrAuth", err)
		}
	case <-ctx.Done():
		t.Fatal("a handshake with the old key did not fail")
	}
}
