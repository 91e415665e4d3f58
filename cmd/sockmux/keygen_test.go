package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/engine"
)

// TestKeygenPSK: keygen --psk prints a different 32-byte key, base64,
// each time, which --key-file accepts.
func TestKeygenPSK(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		var out, errs bytes.Buffer
		if code := run(t.Context(), []string{"keygen", "--psk"}, &out, &errs); code != 0 {
			t.Fatalf("exit %d: %s", code, errs.String())
		}
		k := strings.TrimSpace(out.String())
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != 32 {
			t.Fatalf("key %q: %d bytes, %v", k, len(raw), err)
		}
		if err := engine.CheckKey([]byte(k)); err != nil {
			t.Fatal(err)
		}
		if seen[k] {
			t.Fatalf("the same key twice: %s", k)
		}
		seen[k] = true
		o := &options{keyFile: keyFile(t, k)}
		if got, err := o.key(); err != nil || string(got) != k {
			t.Fatalf("--key-file with the new key: %q, %v", got, err)
		}
	}
}

// TestKeygenIdentity: keygen -f writes a private key (0600) and FILE.pub
// (0644), prints the public key line (sockmux-x25519 BASE64 comment) that
// FILE.pub holds and that --identity's key has; a second run refuses to
// replace the key unless --force.
func TestKeygenIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id")
	gen := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(t.Context(), append([]string{"keygen", "-f", path}, args...), &out, &errs)
		return code, out.String(), errs.String()
	}
	code, out, errs := gen("-C", "alice@laptop")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !regexp.MustCompile(`^sockmux-x25519 [A-Za-z0-9+/]{43}= alice@laptop\n$`).MatchString(out) {
		t.Fatalf("printed %q, want one line sockmux-x25519 BASE64 alice@laptop", out)
	}
	for f, mode := range map[string]os.FileMode{path: 0o600, path + ".pub": 0o644} {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, %v; want mode %04o", f, st.Mode(), err, mode)
		}
	}
	if pub, _ := os.ReadFile(path + ".pub"); string(pub) != out {
		t.Fatalf("FILE.pub %q, printed %q", pub, out)
	}
	o := &options{identity: path}
	var cfg sockmux.PeerConfig
	if err := o.identities(&cfg); err != nil || cfg.Identity.Public.Line("alice@laptop")+"\n" != out {
		t.Fatalf("--identity with the new key: %v, or its public key is not the one printed", err)
	}
	before, _ := os.ReadFile(path)
	if code, _, errs := gen(); code == 0 || !strings.Contains(errs, "--force") {
		t.Fatalf("keygen over an existing key: exit %d, %q; want a refusal naming --force", code, errs)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused keygen changed the key file")
	}
	code, out2, errs := gen("--force")
	if code != 0 || out2 == out {
		t.Fatalf("keygen --force: exit %d %q, printed %q; want a new key", code, errs, out2)
	}
	// With no -C, the comment is ssh-keygen's default, user@host.
	if want := defaultComment(); want == "" || !strings.HasSuffix(out2, " "+want+"\n") {
		t.Errorf("keygen with no -C printed %q, want the comment %q", out2, want)
	}
	if code, _, _ := gen("--psk"); code == 0 {
		t.Fatal("keygen --psk -f: accepted")
	}
}

// TestIdentityFlags: the identity flags need --identity, and their files
// are read strictly.
func TestIdentityFlags(t *testing.T) {
	dir := t.TempDir()
	id := filepath.Join(dir, "id")
	var out, errs bytes.Buffer
	if code := run(t.Context(), []string{"keygen", "-f", id}, &out, &errs); code != 0 {
		t.Fatal(errs.String())
	}
	bad := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(bad, []byte("# ok\nname=\"x\" sockmux-x25519 AAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    options
		want string
	}{
		{options{authKeys: bad}, "need an identity"},
		{options{peerKey: strings.TrimSpace(out.String())}, "need an identity"},
		{options{identity: id, authKeys: bad}, "line 2"},
		{options{identity: id, peerKey: "sockmux-x25519 nope"}, "bad key"},
		{options{identity: id, trustNew: true}, "--known-hosts"},
	} {
		var cfg sockmux.PeerConfig
		if err := tc.o.identities(&cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.o, err, tc.want)
		}
	}
	var cfg sockmux.PeerConfig
	o := options{identity: id, peerKey: strings.Fields(out.String())[1]}
	if err := o.identities(&cfg); err != nil || cfg.PeerKey == nil || cfg.PeerKey.String() != strings.Join(strings.Fields(out.String())[:2], " ") {
		t.Fatalf("--peer-key as bare base64: %v", err)
	}
}
