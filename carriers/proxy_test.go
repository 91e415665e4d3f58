package carriers

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

func TestParseProxy(t *testing.T) {
	good := []struct{ in, want, user, pass string }{
		{"http://proxy.example:3128", "http://proxy.example:3128", "", ""},
		{"proxy.example:3128", "http://proxy.example:3128", "", ""},
		{"http://proxy.example", "http://proxy.example:1080", "", ""},
		{"HTTP://u:p@[::1]:8080/", "http://u:***@[::1]:8080", "u", "p"},
		{"http://us%40er:p%3Ass@h:1", "http://us%40er:***@h:1", "us@er", "p:ss"},
		{"socks5://u:p@127.0.0.1:1080", "socks5://u:***@127.0.0.1:1080", "u", "p"},
		{"socks5h://localhost:9050", "socks5h://localhost:9050", "", ""},
		{"http://user@h:1", "http://user:***@h:1", "user", ""},
	}
	for _, tc := range good {
		p, err := ParseProxy(tc.in)
		if err != nil || p.String() != tc.want || p.User != tc.user || p.Password != tc.pass {
			t.Errorf("ParseProxy(%q) = %v (user %q, password %q), %v; want %s", tc.in, p, p.User, p.Password, err, tc.want)
		}
	}
	bad := []struct{ in, says string }{
		{"", "empty"},
		{"https://h:1", `unsupported proxy scheme "https"`},
		{"socks4://h:1", `unsupported proxy scheme "socks4"`},
		{"http://h:1/path", "no path"},
		{"http://h:99999", "bad port"},
		{"http://h:", "empty port"},
		{"http://:1", "no host"},
		{"http://:secret@h:1", "a password without a user name"},
		{"http://u:hunter2@h:1/x", "no path"},
	}
	for _, tc := range bad {
		_, err := ParseProxy(tc.in)
		if !errors.Is(err, ErrBadProxy) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ParseProxy(%q): %v; want ErrBadProxy saying %q", tc.in, err, tc.says)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseProxy(%q): the error shows the password: %v", tc.in, err)
		}
	}
}

// TestNoProxy: NO_PROXY as curl matches it.
func TestNoProxy(t *testing.T) {
	cases := []struct {
		list, host string
		want       bool
	}{
		{"*", "anything.example", true},
		{"example.com", "example.com", true},
		{"example.com", "www.example.com", true},
		{"example.com", "nonexample.com", false},
		{".example.com", "www.example.com", true},
		{".example.com", "example.com", true},
		{"EXAMPLE.com.", "www.example.COM", true},
		{"a.test, example.com ,b.test", "x.example.com", true},
		{"localhost", "localhost.", true},
		{"localhost", "127.0.0.1", false}, // names match names, IPs IPs
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.0/8", "127.1.2.3", true},
		{"10.0.0.0/8", "127.0.0.1", false},
		{"::1", "::1", true},
		{"[::1]", "[::1]", true},
		{"fe80::/10", "fe80::1%eth0", true},
		{"", "example.com", false},
		{"example.com", "", false},
	}
	for _, tc := range cases {
		if got := noProxyMatch(tc.list, tc.host); got != tc.want {
			t.Errorf("noProxyMatch(%q, %q) = %v, want %v", tc.list, tc.host, got, tc.want)
		}
	}
}

// TestProxyFromEnvironment: which variable each kind reads, in curl's
// order (a set but empty one means no proxy), NO_PROXY, and a variable
// that does not parse named in the error.
func TestProxyFromEnvironment(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		addr string
		want string // the dialer's String
	}{
		{"none set", nil, "tcp://h:1", "tcp://h:1"},
		{"HTTPS_PROXY for tcp", map[string]string{"HTTPS_PROXY": "p:3128"}, "tcp://h:1", "tcp://h:1 via http://p:3128"},
		{"https_proxy before HTTPS_PROXY", map[string]string{"https_proxy": "a:1", "HTTPS_PROXY": "b:1"}, "h:1", "tcp://h:1 via http://a:1"},
		{"ALL_PROXY last", map[string]string{"ALL_PROXY": "socks5://s:1"}, "h:1", "tcp://h:1 via socks5://s:1"},
		{"all_proxy before ALL_PROXY", map[string]string{"all_proxy": "a:1", "ALL_PROXY": "b:1"}, "h:1", "tcp://h:1 via http://a:1"},
		{"HTTPS_PROXY before ALL_PROXY", map[string]string{"HTTPS_PROXY": "a:1", "ALL_PROXY": "b:1"}, "h:1", "tcp://h:1 via http://a:1"},
		{"set and empty: no proxy", map[string]string{"https_proxy": "", "ALL_PROXY": "b:1"}, "h:1", "tcp://h:1"},
		{"http_proxy is not for tcp", map[string]string{"http_proxy": "a:1"}, "h:1", "tcp://h:1"},
		{"ws reads http_proxy", map[string]string{"http_proxy": "a:1", "HTTPS_PROXY": "b:1"}, "ws://h:1/", "ws://h:1/ via http://a:1"},
		{"ws never HTTP_PROXY", map[string]string{"HTTP_PROXY": "a:1"}, "ws://h:1/", "ws://h:1/"},
		{"ws_proxy first", map[string]string{"WS_PROXY": "w:1", "http_proxy": "a:1"}, "ws://h:1/", "ws://h:1/ via http://w:1"},
		{"wss reads HTTPS_PROXY", map[string]string{"HTTPS_PROXY": "b:1", "http_proxy": "a:1"}, "wss://h:1/", "wss://h:1/ via http://b:1"},
		{"wss_proxy first", map[string]string{"wss_proxy": "w:1", "HTTPS_PROXY": "b:1"}, "wss://h:1/", "wss://h:1/ via http://w:1"},
		{"NO_PROXY", map[string]string{"HTTPS_PROXY": "p:1", "NO_PROXY": "example.com"}, "www.example.com:1", "tcp://www.example.com:1"},
		{"no_proxy before NO_PROXY", map[string]string{"HTTPS_PROXY": "p:1", "no_proxy": "other", "NO_PROXY": "h"}, "h:1", "tcp://h:1 via http://p:1"},
		{"NO_PROXY *", map[string]string{"ALL_PROXY": "p:1", "NO_PROXY": "*"}, "h:1", "tcp://h:1"},
		{"fifo never", map[string]string{"ALL_PROXY": "p:1"}, "fifo:/a,/b", "fifo:/a,/b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			d, err := NewDialer(tc.addr, WithProxyFromEnvironment(lookup), WithTLS(TLSConfig{Fingerprint: strings.Repeat("0", 64)}))
			if err != nil {
				t.Fatal(err)
			}
			if d.String() != tc.want {
				t.Fatalf("dialer %s, want %s", d, tc.want)
			}
		})
	}
	lookup := func(k string) (string, bool) {
		if k == "ALL_PROXY" {
			return "ftp://u:hunter2@p:1", true
		}
		return "", false
	}
	_, err := NewDialer("h:1", WithProxyFromEnvironment(lookup))
	if !errors.Is(err, ErrBadProxy) || !strings.Contains(err.Error(), "ALL_PROXY") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a bad ALL_PROXY: %v; want ErrBadProxy naming ALL_PROXY, without the password", err)
	}
	// WithProxy wins over the environment, WithProxy(nil) ignores it.
	p, _ := ParseProxy("http://flag:1")
	env := WithProxyFromEnvironment(func(string) (string, bool) { return "env:1", true })
	if d, _ := NewDialer("h:1", env, WithProxy(p)); d.String() != "tcp://h:1 via http://flag:1" {
		t.Fatalf("with the flag: %s", d)
	}
	if d, _ := NewDialer("h:1", env, WithProxy(nil)); d.String() != "tcp://h:1" {
		t.Fatalf("with none: %s", d)
	}
}

// proxyKinds are the carriers dialled through a proxy: a listen address,
// and the listen and dial options.
func proxyKinds(t testing.TB) []struct {
	name, addr   string
	listen, dial []Option
} {
	return append(wsKinds(t), func() []struct {
		name, addr   string
		listen, dial []Option
	} {
		cfg := TLSConfig{StateDir: t.TempDir()}
		fp, err := cfg.ServerFingerprint()
		if err != nil {
			t.Fatal(err)
		}
		return []struct {
			name, addr   string
			listen, dial []Option
		}{
			{"tcp", "tcp://127.0.0.1:0", nil, nil},
			{"tls", "tls://127.0.0.1:0", []Option{WithTLS(cfg), WithLogger(nil)}, []Option{WithTLS(TLSConfig{Fingerprint: fp})}},
		}
	}()...)
}

// dialAddr is a kind's address for a listener on ln.
func dialAddr(addr string, ln net.Listener) string {
	if strings.HasPrefix(addr, "ws") {
		return wsAddr(addr, ln)
	}
	scheme, _, _ := strings.Cut(addr, "://")
	return scheme + "://" + ln.Addr().String()
}

// TestProxyHTTP: every TCP-based carrier through a real HTTP proxy
// (tinyproxy) with Basic authentication; credentials it wants, refuses,
// or a port it will not connect to, fail with its status line.
func TestProxyHTTP(t *testing.T) {
	kinds := proxyKinds(t)
	lns := make([]net.Listener, len(kinds))
	var ports []string
	for i, k := range kinds {
		lns[i] = listen(t, k.addr, k.listen...)
		_, port, _ := net.SplitHostPort(lns[i].Addr().String())
		ports = append(ports, port)
	}
	px := testkit.Tinyproxy(t, "sockmux", "s3cr3t", ports...)
	good, _ := ParseProxy("http://sockmux:s3cr%33t@" + px) // percent-encoded
	for i, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			c, s := dialPair(t, lns[i], mustDialer(t, dialAddr(k.addr, lns[i]), append(k.dial, WithProxy(good))...))
			if c.RemoteAddr().String() != px {
				t.Fatalf("the carrier's far end is %v, not the proxy %s", c.RemoteAddr(), px)
			}
			roundTrip(t, c, s, "through tinyproxy")
		})
	}
	target := "tcp://" + lns[2].Addr().String() // kinds[2] is tcp
	proxyRefusals(t, []proxyRefusal{
		{"no credentials", "http://" + px, target, ErrProxyAuth, "wants credentials"},
		{"wrong password", "http://sockmux:nope@" + px, target, ErrProxyAuth, `refused the credentials of "sockmux"`},
		{"a port it refuses", "http://sockmux:s3cr3t@" + px, "tcp://" + testkit.FreeAddr(t), ErrProxyForbidden, ` 403 Access violation"`},
	}, "HTTP/1.") // an HTTP proxy's refusal quotes its status line
}

// proxyRefusal is a dial a proxy refuses: through proxy to target, it
// fails with want, saying says.
type proxyRefusal struct {
	name, proxy, target string
	want                error
	says                string
}

// proxyRefusals dials each case and checks its error, which also says
// every one of also.
func proxyRefusals(t *testing.T, cases []proxyRefusal, also ...string) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProxy(tc.proxy)
			if err != nil {
				t.Fatal(err)
			}
			c, err := mustDialer(t, tc.target, WithProxy(p)).Dial(context.Background())
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Dial: %v; want %v saying %q", err, tc.want, tc.says)
			}
			for _, a := range also {
				if !strings.Contains(err.Error(), a) {
					t.Fatalf("Dial: %v; want it to say %q", err, a)
				}
			}
			t.Log(err)
		})
	}
}

// TestProxySOCKS5: every TCP-based carrier through a real SOCKS5 proxy
// (Dante) with the username/password method, the name resolved here
// (socks5) or by the proxy (socks5h); credentials it refuses, none, or a
// target it cannot reach fail saying so.
func TestProxySOCKS5(t *testing.T) {
	px := testkit.Danted(t)
	cred := testkit.DanteUser + ":" + testkit.DantePassword + "@"
	for _, k := range proxyKinds(t) {
		for _, scheme := range []string{"socks5", "socks5h"} {
			t.Run(k.name+"/"+scheme, func(t *testing.T) {
				ln := listen(t, k.addr, k.listen...)
				p, err := ParseProxy(scheme + "://" + cred + px)
				if err != nil {
					t.Fatal(err)
				}
				addr := dialAddr(k.addr, ln)
				if scheme == "socks5h" && (k.name == "tcp" || k.name == "ws") {
					addr = strings.Replace(addr, "127.0.0.1", "localhost", 1) // a name for the proxy to resolve
				}
				c, s := dialPair(t, ln, mustDialer(t, addr, append(k.dial, WithProxy(p))...))
				if c.RemoteAddr().String() != px {
					t.Fatalf("the carrier's far end is %v, not the proxy %s", c.RemoteAddr(), px)
				}
				roundTrip(t, c, s, "through dante")
			})
		}
	}
	proxyRefusals(t, []proxyRefusal{
		{"no credentials", "socks5://" + px, "tcp://" + testkit.FreeAddr(t), ErrProxyAuth, "wants credentials"},
		{"wrong password", "socks5://" + testkit.DanteUser + ":nope@" + px, "tcp://" + testkit.FreeAddr(t), ErrProxyAuth, "refused the credentials"},
		{"nothing listening", "socks5://" + cred + px, "tcp://" + testkit.FreeAddr(t), ErrProxyRefused, "(connection refused)"},
	})
}
