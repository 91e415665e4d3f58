package identity

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t testing.TB, comment string) *PrivateKey {
	t.Helper()
	k, err := Generate(comment)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestPrivateKeyRoundTrip: a written key file reads back as the same
// pair; its .pub is the public key line; modes are 0600 and 0644; a
// second write without force is refused and leaves the first key.
func TestPrivateKeyRoundTrip(t *testing.T) {
	k := mustKey(t, "alice@laptop")
	path := filepath.Join(t.TempDir(), "sub", "id")
	if err := k.Write(path, false); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]os.FileMode{path: 0o600, path + ".pub": 0o644} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", f, st.Mode().Perm(), want)
		}
	}
	got, err := LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Private != k.Private || got.Public != k.Public || got.Comment != "alice@laptop" {
		t.Fatalf("read back %+v, wrote %+v", got, k)
	}
	pub, _ := os.ReadFile(path + ".pub")
	pk, comment, err := ParsePublicKey(string(pub))
	if err != nil || pk != k.Public || comment != "alice@laptop" {
		t.Fatalf(".pub %q: key %v comment %q err %v", pub, pk == k.Public, comment, err)
	}
	if !strings.HasPrefix(string(pub), "sockmux-x25519 ") || strings.Count(string(pub), "\n") != 1 {
		t.Fatalf(".pub is not one public key line: %q", pub)
	}
	other := mustKey(t, "")
	if err := other.Write(path, false); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("overwrite without force: %v, want ErrKeyExists", err)
	}
	if again, _ := LoadPrivateKey(path); again.Private != k.Private {
		t.Fatal("a refused overwrite changed the key")
	}
	if err := other.Write(path, true); err != nil {
		t.Fatal(err)
	}
	if again, _ := LoadPrivateKey(path); again.Private != other.Private {
		t.Fatal("--force did not replace the key")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(path); !errors.Is(err, ErrKeyMode) {
		t.Fatalf("a world-readable key: %v, want ErrKeyMode", err)
	}
}

func TestParsePublicKey(t *testing.T) {
	k := mustKey(t, "")
	b64 := strings.Fields(k.Public.String())[1]
	for _, s := range []string{k.Public.String(), b64, "  " + k.Public.Line("a b c") + "\n"} {
		if got, _, err := ParsePublicKey(s); err != nil || got != k.Public {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "sockmux-x25519", "ssh-ed25519 " + b64, "sockmux-x25519 " + b64[:20], "sockmux-x25519 !!!"} {
		if _, _, err := ParsePublicKey(s); !errors.Is(err, ErrBadKey) {
			t.Errorf("%q: %v, want ErrBadKey", s, err)
		}
	}
}

func TestAuthorizedKeys(t *testing.T) {
	a, b, c := mustKey(t, ""), mustKey(t, ""), mustKey(t, "")
	file := "# peers\n\n" +
		`name="lap top",permit-target="10.0.0.0/8:*",permit-target="db.internal:5432",permit-listen="127.0.0.1:8080" ` + a.Public.Line("alice@laptop") + "\n" +
		b.Public.String() + "\r\n" +
		`name="q\"uote, comma" ` + c.Public.String() + "\n"
	ak, err := ParseAuthorizedKeys([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if ak.Len() != 3 {
		t.Fatalf("%d keys, want 3", ak.Len())
	}
	ea := ak.Lookup(a.Public)
	if ea == nil || ea.Name != "lap top" || ea.Comment != "alice@laptop" || ea.Line != 3 {
		t.Fatalf("entry a: %+v", ea)
	}
	if !ea.PermitTarget.Allows("10.1.2.3:22") || !ea.PermitTarget.Allows("db.internal:5432") || ea.PermitTarget.Allows("db.internal:22") {
		t.Fatalf("permit-target %v", ea.PermitTarget)
	}
	if !ea.PermitListen.Allows("127.0.0.1:8080") || ea.PermitListen.Allows("127.0.0.1:8081") {
		t.Fatalf("permit-listen %v", ea.PermitListen)
	}
	if eb := ak.Lookup(b.Public); eb == nil || eb.PermitListen != nil || eb.PermitTarget != nil || eb.Label() != b.Public.String() {
		t.Fatalf("entry b: %+v", eb)
	}
	if ec := ak.Lookup(c.Public); ec == nil || ec.Name != `q"uote, comma` {
		t.Fatalf("entry c: %+v", ec)
	}
	if ak.Lookup(mustKey(t, "").Public) != nil {
		t.Fatal("an unlisted key was found")
	}
}

// TestAuthorizedKeysErrors: each bad line is refused, naming its line.
func TestAuthorizedKeysErrors(t *testing.T) {
	k, k2 := mustKey(t, "").Public.String(), mustKey(t, "").Public.String()
	for _, tc := range []struct{ line, want string }{
		{`from="x" ` + k, `unknown option "from"`},
		{`name=x ` + k, "double quotes"},
		{`name="" ` + k, "empty value"},
		{`name="a ` + k, "unterminated"},
		{`name="a",name="b" ` + k, "twice"},
		{`permit-target="nohost" ` + k, "bad target pattern"},
		{`permit-listen="*:99999" ` + k, "permit-listen"},
		{`name="a"` + k, "want ','"},
		{`name="a",` + k, "want name="},
		{"sockmux-x25519", "want name="},
		{"sockmux-x25519 AAAA", "bytes"},
		{"ssh-ed25519 AAAA", "want name="},
		{"name=\"\x01\" " + k, "printable"},
		{k + "\n" + k2 + "\n" + k, "line 2 again"},
	} {
		_, err := ParseAuthorizedKeys([]byte("# first\n" + tc.line + "\n"))
		if !errors.Is(err, ErrBadAuthorizedKeys) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want ErrBadAuthorizedKeys with %q", tc.line, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), "line 2") && !strings.Contains(err.Error(), "line 4") {
			t.Errorf("%q: %v names no line", tc.line, err)
		}
	}
}

func TestKnownHosts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir", "known_hosts")
	kh, err := LoadKnownHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kh.Lookup("h:1"); ok {
		t.Fatal("an empty file knows a host")
	}
	k1, k2 := mustKey(t, ""), mustKey(t, "")
	if err := AddKnownHost(path, "h:1", k1.Public); err != nil {
		t.Fatal(err)
	}
	if err := AddKnownHost(path, "[::1]:2", k2.Public); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", st.Mode().Perm())
	}
	kh, err = LoadKnownHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := kh.Lookup("h:1"); !ok || got != k1.Public {
		t.Fatal("h:1 not found as added")
	}
	if got, ok := kh.Lookup("[::1]:2"); !ok || got != k2.Public {
		t.Fatal("[::1]:2 not found as added")
	}
	if err := AddKnownHost(path, "h:1", k2.Public); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKnownHosts(path); !errors.Is(err, ErrBadKnownHosts) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("a host listed twice: %v, want ErrBadKnownHosts at line 3", err)
	}
	if _, err := ParseKnownHosts([]byte("h:1\n")); !errors.Is(err, ErrBadKnownHosts) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a line with no key: %v", err)
	}
}

// TestKnownHostAddr: a line written by hand ("hub:7000"), one recorded
// from a tcp dialler ("tcp://hub:7000") and a dial through a proxy name
// the same listener, and other kinds keep their scheme; a key that
// differs from the one a hand-written line pins is found as that line's.
func TestKnownHostAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:7000", "127.0.0.1:7000"},
		{"tcp://127.0.0.1:7000", "127.0.0.1:7000"},
		{"tcp://127.0.0.1:7000 via http://user:***@127.0.0.1:3128", "127.0.0.1:7000"},
		{"tls://hub.example:443 via socks5://127.0.0.1:1080", "tls://hub.example:443"},
		{"wss://hub.example:443/tunnel", "wss://hub.example:443/tunnel"},
		{"[::1]:2", "[::1]:2"},
	} {
		if got := KnownHostAddr(tc.in); got != tc.want {
			t.Errorf("KnownHostAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	k1, k2 := mustKey(t, ""), mustKey(t, "")
	kh, err := ParseKnownHosts([]byte("127.0.0.1:7000 " + k1.Public.String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dialled := range []string{"tcp://127.0.0.1:7000", "tcp://127.0.0.1:7000 via http://u:***@127.0.0.1:3128"} {
		if got, ok := kh.Lookup(dialled); !ok || got != k1.Public || got == k2.Public {
			t.Errorf("Lookup(%q) = %v, %v; want the hand-written line's key", dialled, got, ok)
		}
	}
	if _, err := ParseKnownHosts([]byte("h:1 " + k1.Public.String() + "\ntcp://h:1 " + k2.Public.String() + "\n")); !errors.Is(err, ErrBadKnownHosts) {
		t.Errorf("h:1 and tcp://h:1 both listed: %v, want ErrBadKnownHosts (the same listener twice)", err)
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := AddKnownHost(path, "tcp://127.0.0.1:7000 via http://u:***@127.0.0.1:3128", k1.Public); err != nil {
		t.Fatalf("recording a key dialled through a proxy: %v", err)
	}
	if data, _ := os.ReadFile(path); !strings.HasPrefix(string(data), "127.0.0.1:7000 ") {
		t.Errorf("recorded %q, want the listener's address without the proxy", data)
	}
}

// FuzzAuthorizedKeys: the parser never panics; what it accepts has keys
// it finds again, and an accepted file parses the same a second time.
func FuzzAuthorizedKeys(f *testing.F) {
	k := mustKey(f, "").Public.String()
	for _, s := range []string{k, `name="a",permit-target="*:*" ` + k + " c", `permit-listen="127.0.0.1:1",name="x\"y" ` + k, "#\n\n" + k, `name="a ` + k, `x="1" ` + k} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ak, err := ParseAuthorizedKeys(data)
		if err != nil {
			if !errors.Is(err, ErrBadAuthorizedKeys) || !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error %v is not ErrBadAuthorizedKeys with a line", err)
			}
			return
		}
		again, err := ParseAuthorizedKeys(data)
		if err != nil || again.Len() != ak.Len() || !again.Equal(ak) {
			t.Fatalf("second parse differs: %v", err)
		}
		for key, e := range ak.entries {
			if e.Key != key || ak.Lookup(key) != e || e.Line < 1 || len(e.Name) > MaxNameLen {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}

// FuzzKnownHosts: the known hosts parser never panics, and what it
// accepts parses the same again.
func FuzzKnownHosts(f *testing.F) {
	k := mustKey(f, "").Public.String()
	for _, s := range []string{"h:1 " + k, "# c\n\nh:1 " + k + " comment\n[::1]:2 " + k, "h:1", "h:1 ssh-rsa AAAA", "h:1 " + k + "\nh:1 " + k} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kh, err := ParseKnownHosts(data)
		if err != nil {
			if !errors.Is(err, ErrBadKnownHosts) || !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error %v is not ErrBadKnownHosts with a line", err)
			}
			return
		}
		again, err := ParseKnownHosts(data)
		if err != nil || len(again.hosts) != len(kh.hosts) {
			t.Fatalf("second parse differs: %v", err)
		}
		for h, key := range kh.hosts {
			if got, ok := again.Lookup(h); !ok || got != key {
				t.Fatalf("host %q differs", h)
			}
		}
	})
}
