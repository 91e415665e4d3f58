package forward

import (
	"errors"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
)

func TestParseForward(t *testing.T) {
	tests := []struct {
		spec   string
		bind   string
		target string
		err    error
	}{
		// 3 parts: loopback bind.
		{"8080:example.com:80", "127.0.0.1:8080", "example.com:80", nil},
		{"8080:10.0.0.1:22", "127.0.0.1:8080", "10.0.0.1:22", nil},
		{"65535:h:65535", "127.0.0.1:65535", "h:65535", nil},
		{"1:h:1", "127.0.0.1:1", "h:1", nil},
		// 4 parts.
		{"0.0.0.0:8080:h:80", "0.0.0.0:8080", "h:80", nil},
		{"localhost:8080:h:80", "localhost:8080", "h:80", nil},
		{"192.168.1.5:2222:db.internal:5432", "192.168.1.5:2222", "db.internal:5432", nil},
		// '*' and an empty bind address mean every interface.
		{"*:8080:h:80", "0.0.0.0:8080", "h:80", nil},
		{":8080:h:80", "0.0.0.0:8080", "h:80", nil},
		// IPv6 in brackets.
		{"[::1]:8080:[::1]:80", "[::1]:8080", "[::1]:80", nil},
		{"[::]:443:[2001:db8::1]:8443", "[::]:443", "[2001:db8::1]:8443", nil},
		{"8080:[fe80::1%eth0]:80", "127.0.0.1:8080", "[fe80::1%eth0]:80", nil},
		{"[127.0.0.1]:8080:[h]:80", "127.0.0.1:8080", "h:80", nil},
		// Port 0 lets the listening side pick a port, never the target.
		{"0:h:80", "127.0.0.1:0", "h:80", nil},
		{"*:0:h:80", "0.0.0.0:0", "h:80", nil},
		{"8080:h:0", "", "", ErrBadForward},
		{"0:h:0", "", "", ErrBadForward},
		// Bad ports.
		{"65536:h:80", "", "", ErrBadForward},
		{"8080:h:65536", "", "", ErrBadForward},
		{"-1:h:80", "", "", ErrBadForward},
		{"8080:h:-80", "", "", ErrBadForward},
		{"http:h:80", "", "", ErrBadForward},
		{"8080:h:http", "", "", ErrBadForward},
		{"80 80:h:80", "", "", ErrBadForward},
		{"99999999999999999999:h:80", "", "", ErrBadForward},
		// Missing or extra parts.
		{"", "", "", ErrBadForward},
		{"8080", "", "", ErrBadForward},
		{"8080:h", "", "", ErrBadForward},
		{"8080:h:", "", "", ErrBadForward},
		{":h:80", "", "", ErrBadForward},
		{"8080::80", "", "", ErrBadForward},
		{"a:8080::80", "", "", ErrBadForward},
		{"a:b:8080:h:80", "", "", ErrBadForward},
		{"::1:8080:h:80", "", "", ErrBadForward},
		{":::", "", "", ErrBadForward},
		// Broken brackets.
		{"[::1:8080:h:80", "", "", ErrBadForward},
		{"[::1]8080:h:80", "", "", ErrBadForward},
		{"8080:[::1]80", "", "", ErrBadForward},
		{"8080:[]:80", "", "", ErrBadForward},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			f, err := ParseForward(tc.spec)
			testkit.WantErr(t, "ParseForward", err, tc.err)
			if err != nil {
				if errors.Is(err, engine.ErrProtocol) {
					t.Fatalf("a bad spec is not a protocol error: %v", err)
				}
				return
			}
			if f.Bind != tc.bind || f.Target != tc.target {
				t.Fatalf("ParseForward(%q) = %+v, want bind %q target %q", tc.spec, f, tc.bind, tc.target)
			}
			if f.String() != tc.bind+"->"+tc.target {
				t.Fatalf("String() = %q", f.String())
			}
		})
	}
}

// specPart writes one part of a forward spec so that splitSpec reads it
// back: in brackets when it holds a colon or starts with one.
func specPart(s string) string {
	if strings.Contains(s, ":") || strings.HasPrefix(s, "[") {
		return "[" + s + "]"
	}
	return s
}

// hostPort splits what net.JoinHostPort made back into host and port.
func hostPort(tb testing.TB, s string) (string, string) {
	tb.Helper()
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		tb.Fatalf("%q has no port", s)
	}
	host, port := s[:i], s[i+1:]
	// JoinHostPort brackets exactly the hosts that hold a colon.
	if strings.Contains(host, ":") {
		if !strings.HasPrefix(host, "[") || !strings.HasSuffix(host, "]") {
			tb.Fatalf("%q: host with a colon not in brackets", s)
		}
		host = host[1 : len(host)-1]
	}
	return host, port
}

// FuzzParseForward: no panic; errors are ErrBadForward; a parsed forward,
// written back as a 4-part spec, parses to the same forward.
func FuzzParseForward(f *testing.F) {
	for _, s := range []string{
		"8080:example.com:80", "0.0.0.0:8080:h:80", "*:8080:h:80", ":8080:h:80",
		"[::1]:8080:[::1]:80", "0:h:80", "8080:h:0", "[::1:8080:h:80", "8080::80", "a:b:c:d:e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		fw, err := ParseForward(spec)
		if err != nil {
			if !errors.Is(err, ErrBadForward) {
				t.Fatalf("error %v", err)
			}
			return
		}
		bind, lport := hostPort(t, fw.Bind)
		host, hport := hostPort(t, fw.Target)
		if host == "" || hport == "" || lport == "" {
			t.Fatalf("%q -> %+v: empty part", spec, fw)
		}
		again := specPart(bind) + ":" + lport + ":" + specPart(host) + ":" + hport
		fw2, err := ParseForward(again)
		if err != nil {
			t.Fatalf("%q -> %+v -> %q: %v", spec, fw, again, err)
		}
		if fw2 != fw {
			t.Fatalf("%q -> %+v -> %q -> %+v", spec, fw, again, fw2)
		}
	})
}

func TestParseForwardUDP(t *testing.T) {
	f, err := ParseForward("5353/udp:127.0.0.1:53")
	if err != nil || !f.UDP || f.Bind != "127.0.0.1:5353" || f.Target != "127.0.0.1:53" {
		t.Fatalf("ParseForward = %+v, %v", f, err)
	}
	if _, err := ParseForward("5353/tcp:127.0.0.1:53"); err == nil {
		t.Fatal("5353/tcp parsed")
	}
	if f, err := ParseRemote("0.0.0.0:9999/udp:10.0.0.1:9"); err != nil || !f.UDP || f.Bind != "0.0.0.0:9999" {
		t.Fatalf("ParseRemote = %+v, %v", f, err)
	}
}
