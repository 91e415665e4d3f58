package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sockmux.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigErrors: every class of mistake names the file, the line and
// the key, and nothing starts.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		text  string
		line  int
		key   string
		class error // errors.Is, besides errConfig
	}{
		{"unknown top-level key", "log-level = \"info\"\nlogfile = \"x\"\n[[link]]\nconnect = \"127.0.0.1:1\"\n", 2, "logfile", errUnknownKey},
		{"unknown link key", "[[link]]\nname = \"a\"\nconnect = \"127.0.0.1:1\"\nlocals = [\"1:h:2\"]\n", 4, "locals", errUnknownKey},
		{"listen-only key on connect", "[[link]]\nconnect = \"127.0.0.1:1\"\ninsecure = true\n", 3, "insecure", errUnknownKey},
		{"bad address", "[[link]]\nname = \"a\"\nconnect = \"nocolon\"\n", 3, "connect", nil},
		{"bad forward", "[[link]]\nconnect = \"127.0.0.1:1\"\nlocal = [\n  \"8080:web\",\n]\n", 3, "local", nil},
		{"bad duration", "[[link]]\nconnect = \"127.0.0.1:1\"\nkeepalive = \"soon\"\n", 3, "keepalive", nil},
		{"wrong type", "[[link]]\nconnect = \"127.0.0.1:1\"\nmax-streams = \"many\"\n", 3, "max-streams", nil},
		{"bad pattern", "[[link]]\nconnect = \"127.0.0.1:1\"\nallow-target = [\"10.0.0.0/99:*\"]\n", 3, "allow-target", nil},
		{"both modes", "[[link]]\nlisten = \"127.0.0.1:1\"\nconnect = \"127.0.0.1:2\"\n", 3, "connect", nil},
		{"no mode", "[[link]]\nname = \"lost\"\n", 2, "name", nil},
		{"conflicting forwards", "[[link]]\nname = \"a\"\nconnect = \"127.0.0.1:1\"\nlocal = [\"127.0.0.1:7000:h:1\"]\n[[link]]\nname = \"b\"\nconnect = \"127.0.0.1:2\"\nlocal = [\"127.0.0.1:7000:h:2\"]\n", 8, "local", errConflict},
		{"forward on the link port", "[[link]]\nname = \"a\"\nlisten = \"127.0.0.1:7001\"\n[[link]]\nname = \"b\"\nconnect = \"127.0.0.1:7001\"\ndynamic = [\"127.0.0.1:7001\"]\n", 7, "dynamic", errConflict},
		{"UDP forward on the quic link port", "[[link]]\nname = \"a\"\nlisten = \"quic://127.0.0.1:7001\"\n[[link]]\nname = \"b\"\nconnect = \"127.0.0.1:7001\"\nlocal = [\"127.0.0.1:7001/udp:h:1\"]\n", 7, "local", errConflict},
		{"same name", "[[link]]\nname = \"a\"\nconnect = \"127.0.0.1:1\"\n[[link]]\nname = \"a\"\nconnect = \"127.0.0.1:2\"\n", 5, "name", nil},
		{"syntax", "[[link]]\nconnect = \"127.0.0.1:1\n", 2, "", nil},
		{"too many carriers", "[[link]]\nconnect = \"127.0.0.1:1\"\ncarriers = 40\n", 3, "carriers", nil},
		{"carriers on listen", "[[link]]\nlisten = \"127.0.0.1:1\"\ncarriers = 2\n", 3, "carriers", errUnknownKey},
		{"unknown cluster key", "[[link]]\nlisten = \"127.0.0.1:1\"\n[cluster]\nname = \"c\"\nbnd = \"127.0.0.1:0\"\n", 5, "cluster.bnd", errUnknownKey},
		{"cluster without name", "[[link]]\nlisten = \"127.0.0.1:1\"\n[cluster]\nbind = \"127.0.0.1:0\"\n", 3, "cluster.name", nil},
		{"bad cluster bind", "[[link]]\nlisten = \"127.0.0.1:1\"\n[cluster]\nname = \"c\"\nbind = \"nocolon\"\n", 5, "cluster.bind", nil},
		{"cluster seed not host:port", "[[link]]\nlisten = \"127.0.0.1:1\"\n[cluster]\nname = \"c\"\nbind = \"127.0.0.1:0\"\nseed = [\"hub-b\"]\n", 6, "cluster.seed", nil},
		{"a connect flag no link takes", "[[link]]\nconnect = \"127.0.0.1:1\"\nconnect-timeout = \"5s\"\n", 3, "connect-timeout", errUnknownKey},
		{"a table for a key", "[[link]]\nconnect = \"127.0.0.1:1\"\n[link.local]\nx = 1\n", 3, "local", nil},
		{"a list for a key of one value", "[[link]]\nconnect = \"127.0.0.1:1\"\nkeepalive = [\"5s\", \"7s\"]\n", 3, "keepalive", nil},
		{"metrics of the wrong kind", "metrics = 9100\n[[link]]\nconnect = \"127.0.0.1:1\"\n", 1, "metrics", nil},
		{"bad metrics address", "log-level = \"info\"\nmetrics = \"nope\"\n[[link]]\nconnect = \"127.0.0.1:1\"\n", 2, "metrics", nil},
		{"a share on a forward's port", "[[link]]\nname = \"a\"\nconnect = \"127.0.0.1:1\"\nlocal = [\"17500:127.0.0.1:9\"]\n[[share]]\nname = \"s\"\nlisten = \"17500\"\nupstream = \"tcp://127.0.0.1:1\"\n", 7, "listen", errConflict},
		{"unknown share key", "[[share]]\nname = \"s\"\nlisten = \"7000\"\nupstream = \"tcp://127.0.0.1:1\"\nreplays = \"1\"\n", 5, "replays", errUnknownKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.text)
			_, err := loadConfig(path, slog.New(slog.DiscardHandler))
			var ce *configError
			if !errors.As(err, &ce) || !errors.Is(err, errConfig) {
				t.Fatalf("loadConfig: %v, want a configError", err)
			}
			if ce.Path != path || ce.Line != tc.line || ce.Key != tc.key {
				t.Fatalf("error at %s:%d key %q, want line %d key %q (%v)", ce.Path, ce.Line, ce.Key, tc.line, tc.key, err)
			}
			if tc.class != nil && !errors.Is(err, tc.class) {
				t.Fatalf("%v is not %v", err, tc.class)
			}
			if !strings.HasPrefix(err.Error(), path) {
				t.Fatalf("the message %q does not start with the file", err)
			}
		})
	}
}

// TestConfigTypoSuggestions: a key one typo away from a real one is named.
func TestConfigTypoSuggestions(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[[link]]\nconnect = \"127.0.0.1:1\"\nlokal = [\"1:h:2\"]\n", `did you mean "local"?`},
		{"log-levl = \"info\"\n[[link]]\nconnect = \"127.0.0.1:1\"\n", `did you mean "log-level"?`},
		{"[[link]]\nconnect = \"127.0.0.1:1\"\nmax-stream = 5\n", `did you mean "max-streams"?`},
		{"[[link]]\nlisten = \"127.0.0.1:1\"\n[cluster]\nname = \"c\"\nprovidr = \"etcd\"\n", `did you mean "provider"?`},
	} {
		_, err := loadConfig(writeConfig(t, tc.text), slog.New(slog.DiscardHandler))
		if !errors.Is(err, errUnknownKey) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an unknown key and %s", tc.text, err, tc.want)
		}
	}
}

// TestCheck: sockmux check prints the resolved configuration.
func TestCheck(t *testing.T) {
	path := writeConfig(t, "[[link]]\nname = \"hostY\"\nconnect = \"127.0.0.1:9000\"\nlocal = [\"9023:127.0.0.1:23\"]\ndynamic = [\"1080\"]\ncarriers = 4\nresume-window = \"1m\"\n")
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"check", "-c", path}, &out, &errOut); code != 0 {
		t.Fatalf("check exited %d: %s", code, errOut.String())
	}
	for _, want := range []string{`link "hostY": connect 127.0.0.1:9000`, "-L 127.0.0.1:9023->127.0.0.1:23", "-D 127.0.0.1:1080", "carriers 4; resume-window 1m0s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	bad := writeConfig(t, "[[link]]\nconnect = \"127.0.0.1:1\"\nbogus = 1\n")
	errOut.Reset()
	if code := run(t.Context(), []string{"check", "-c", bad}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), bad+":3") {
		t.Fatalf("check of a bad file: exit %d, %q", code, errOut.String())
	}
}
