package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/testkit"
)

// writeIdentity makes a key file in dir and returns its path and key.
func writeIdentity(t *testing.T, dir, name string) (string, *identity.PrivateKey) {
	t.Helper()
	k, err := identity.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := k.Write(path, false); err != nil {
		t.Fatal(err)
	}
	return path, k
}

// TestReloadAuthorizedKeys: `sockmux reload` after the authorized keys
// file lost a key closes that key's link, and only that one: the other
// link's forward still answers; the log calls the peers by their name=.
func TestReloadAuthorizedKeys(t *testing.T) {
	testkit.CheckLeaks(t)
	dir := t.TempDir()
	greeter := testkit.Greeter(t, "hello")
	link, fwd1, fwd2 := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	control := filepath.Join(dir, "ctl.sock")
	hub, hk := writeIdentity(t, dir, "hub")
	one, k1 := writeIdentity(t, dir, "one")
	two, k2 := writeIdentity(t, dir, "two")
	auth := filepath.Join(dir, "authorized_keys")
	writeAuth := func(keys ...string) {
		if err := os.WriteFile(auth, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeAuth(`name="one" `+k1.Public.String(), `name="two" `+k2.Public.String())
	conf := fmt.Sprintf("control = %q\n"+
		"[[link]]\nname = \"hub\"\nlisten = %q\nidentity = %q\nauthorized-keys = %q\n"+
		"[[link]]\nname = \"one\"\nconnect = %q\nidentity = %q\npeer-key = %q\nlocal = [%q]\n"+
		"[[link]]\nname = \"two\"\nconnect = %q\nidentity = %q\npeer-key = %q\nlocal = [%q]\n",
		control, link, hub, auth, link, one, hk.Public.String(), fwd1+":"+greeter, link, two, hk.Public.String(), fwd2+":"+greeter)
	d := startDaemon(t, conf)
	waitLog(t, d.log, `msg="link up" link=hub peer=one`)
	waitLog(t, d.log, `msg="link up" link=hub peer=two`)
	if got := testkit.Greeting(t, fwd2); got != "hello" {
		t.Fatalf("two's forward: %q", got)
	}
	writeAuth(`name="two" ` + k2.Public.String())
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"reload", "--control", control}, &out, &errOut); code != 0 {
		t.Fatalf("sockmux reload: exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), `applied: link "hub": policies and key`) {
		t.Fatalf("reload did not apply the authorized keys:\n%s", out.String())
	}
	waitLog(t, d.log, `msg="peer's key removed from the authorized keys; closing its link" link=hub peer=one`)
	waitLog(t, d.log, `msg="link down" link=one peer=tcp://`+link+` reason="peer going away: authentication failed: this side no longer authorizes your key`)
	if got := testkit.Greeting(t, fwd2); got != "hello" {
		t.Fatalf("after the reload, two's forward: %q", got)
	}
	if strings.Contains(d.log.String(), `closing its link" link=hub peer=two`) {
		t.Fatal("two's link was closed too")
	}
}

// TestConnectUnknownListenerKey: like ssh with an unknown host key, an
// interactive connect to a listener whose key nothing pins exits 1 with
// the key in its message; --known-hosts --trust-new records it and
// connects; a pinned key that differs exits 1 naming the mismatch.
func TestConnectUnknownListenerKey(t *testing.T) {
	testkit.CheckLeaks(t)
	dir := t.TempDir()
	link := testkit.FreeAddr(t)
	hub, hk := writeIdentity(t, dir, "hub")
	me, _ := writeIdentity(t, dir, "me")
	_, other := writeIdentity(t, dir, "other")
	runBG(t, "listen", "--drain", "0s", "--identity", hub, link)
	waitListening(t, link)
	code, log := runFor(t, 20*time.Second, "connect", "--identity", me, link)
	if code != 1 || !strings.Contains(log, "listener's key is not known") || !strings.Contains(log, hk.Public.String()) {
		t.Fatalf("unpinned: exit %d, want 1 naming the listener's key %s:\n%s", code, hk.Public, log)
	}
	code, log = runFor(t, 20*time.Second, "connect", "--identity", me, "--peer-key", other.Public.String(), link)
	if code != 1 || !strings.Contains(log, "does not match the pinned key") {
		t.Fatalf("pinned another key: exit %d, want 1 with the mismatch:\n%s", code, log)
	}
	kh := filepath.Join(dir, "known_hosts")
	connectUp := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		var out syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, append([]string{"connect", "--identity", me, "--known-hosts", kh}, append(args, link)...), io.Discard, &out)
		}()
		waitLog(t, &out, `msg="link up"`)
		cancel()
		if c := <-done; c != 0 {
			t.Fatalf("connect %v: exit %d:\n%s", args, c, out.String())
		}
	}
	connectUp("--trust-new")
	if data, err := os.ReadFile(kh); err != nil || !strings.Contains(string(data), hk.Public.String()) {
		t.Fatalf("known hosts %q, %v: want the listener's key recorded", data, err)
	}
	connectUp() // the key recorded pins the listener now
}

// TestSIGHUPAuthorizedKeys: SIGHUP to listen re-reads --authorized-keys:
// the link of the key removed is closed, the other's forward still works;
// a file that no longer parses changes nothing.
func TestSIGHUPAuthorizedKeys(t *testing.T) {
	testkit.CheckLeaks(t)
	dir := t.TempDir()
	greeter := testkit.Greeter(t, "hello")
	link, fwd1, fwd2 := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	hub, hk := writeIdentity(t, dir, "hub")
	one, k1 := writeIdentity(t, dir, "one")
	two, k2 := writeIdentity(t, dir, "two")
	auth := filepath.Join(dir, "authorized_keys")
	writeAuth := func(text string) {
		if err := os.WriteFile(auth, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeAuth(`name="one" ` + k1.Public.String() + "\n" + `name="two" ` + k2.Public.String() + "\n")
	hlog := runBG(t, "listen", "--drain", "0s", "--identity", hub, "--authorized-keys", auth, link)
	waitListening(t, link)
	runBG(t, "connect", "--identity", one, "--peer-key", hk.Public.String(), "-L", fwd1+":"+greeter, link)
	runBG(t, "connect", "--identity", two, "--peer-key", hk.Public.String(), "-L", fwd2+":"+greeter, link)
	waitLog(t, hlog, `msg="link up" peer=one`)
	waitLog(t, hlog, `msg="link up" peer=two`)

	writeAuth("name=oops " + k2.Public.String() + "\n")
	sendHUP(t)
	waitLog(t, hlog, `authorized keys not reloaded`)
	if got := testkit.Greeting(t, fwd1); got != "hello" {
		t.Fatalf("after a bad file, one's forward: %q", got)
	}
	writeAuth(`name="two" ` + k2.Public.String() + "\n")
	sendHUP(t)
	waitLog(t, hlog, `msg="peer's key removed from the authorized keys; closing its link" peer=one`)
	if got := testkit.Greeting(t, fwd2); got != "hello" {
		t.Fatalf("after the reload, two's forward: %q", got)
	}
	if strings.Contains(hlog.String(), `closing its link" peer=two`) {
		t.Fatal("two's link was closed too")
	}
}
