package actors

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	smproxy "github.com/sockmux/sockmux/internal/proxy"
	"github.com/sockmux/sockmux/internal/testkit"
)

func webServer(t testing.TB, body string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	t.Cleanup(s.Close)
	return s
}

func socksGet(t testing.TB, proxyAddr string, auth *proxy.Auth, target string) (string, error) {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", proxyAddr, auth, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: d.(proxy.ContextDialer).DialContext}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(target)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestProxySOCKS5: -D's SOCKS5 requests leave the tunnel at the peer, by
// name or by address, with username and password when required.
func TestProxySOCKS5(t *testing.T) {
	web := webServer(t, "hello through the tunnel")
	u, _ := url.Parse(web.URL)
	_, port, _ := net.SplitHostPort(u.Host)
	p := newTestPair(t, pairConfig{B: func(c *Config) {
		c.Dynamic = []string{"127.0.0.1:0"}
		c.ProxyAuth = &smproxy.ProxyAuth{User: "u", Password: "p"}
	}})
	px := p.B.ForwardAddrs()[0].String()
	for _, host := range []string{"127.0.0.1", "localhost"} {
		body, err := socksGet(t, px, &proxy.Auth{User: "u", Password: "p"}, "http://"+net.JoinHostPort(host, port)+"/")
		if err != nil || body != "hello through the tunnel" {
			t.Errorf("via %s: %q, %v", host, body, err)
		}
	}
	if _, err := socksGet(t, px, &proxy.Auth{User: "u", Password: "wrong"}, web.URL); err == nil {
		t.Error("a wrong password was accepted")
	}
	if p.A.Stats().StreamsOpened.Load() < 2 {
		t.Errorf("the peer opened %d streams: the requests did not leave at the peer", p.A.Stats().StreamsOpened.Load())
	}
}

// TestProxyHTTPConnect: -D also speaks HTTP CONNECT (net/http uses it for
// https URLs).
func TestProxyHTTPConnect(t *testing.T) {
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls hello") }))
	t.Cleanup(web.Close)
	p := newTestPair(t, pairConfig{B: func(c *Config) { c.Dynamic = []string{"127.0.0.1:0"} }})
	pu, _ := url.Parse("http://" + p.B.ForwardAddrs()[0].String())
	tr := &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(web.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "tls hello" {
		t.Fatalf("body %q", b)
	}
}

// TestProxyRefusedTarget: a destination the peer's policy refuses gets a
// SOCKS failure, not a hang, and is never dialled.
func TestProxyRefusedTarget(t *testing.T) {
	web := webServer(t, "secret")
	p := newTestPair(t, pairConfig{
		A: func(c *Config) { c.AllowTargets = forward.MustTargetPolicy("127.0.0.2:*") },
		B: func(c *Config) { c.Dynamic = []string{"127.0.0.1:0"} },
	})
	d, _ := proxy.SOCKS5("tcp", p.B.ForwardAddrs()[0].String(), nil, proxy.Direct)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, _ := url.Parse(web.URL)
	_, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", u.Host)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial through the proxy: %v; want a refusal", err)
	}
	if p.A.Stats().dialFailures.Load() != 0 {
		t.Error("the refused destination was dialled")
	}
}

// TestProxyDirect: --direct destinations are dialled here, not through the
// tunnel.
func TestProxyDirect(t *testing.T) {
	web := webServer(t, "near")
	p := newTestPair(t, pairConfig{B: func(c *Config) {
		c.Dynamic = []string{"127.0.0.1:0"}
		c.Direct = forward.MustTargetPolicy("127.0.0.1:*")
	}})
	body, err := socksGet(t, p.B.ForwardAddrs()[0].String(), nil, web.URL)
	if err != nil || body != "near" {
		t.Fatalf("%q, %v", body, err)
	}
	if n := p.A.Stats().StreamsOpened.Load(); n != 0 {
		t.Fatalf("the peer opened %d streams for a direct destination", n)
	}
}

// TestProxyReverse: "-R port:socks" gives the peer a proxy whose requests
// leave from this side.
func TestProxyReverse(t *testing.T) {
	web := webServer(t, "from the asking side")
	port := testkit.FreeAddr(t)
	p := newTestPair(t, pairConfig{B: func(c *Config) {
		c.Remotes = []forward.Forward{{Bind: port, Target: forward.TargetSOCKS}}
	}})
	remoteListening(t, p.BLog, 1)
	body, err := socksGet(t, port, nil, web.URL)
	if err != nil || body != "from the asking side" {
		t.Fatalf("%q, %v", body, err)
	}
}

// TestProxyCurl: -D as a user drives it, with curl: SOCKS5 with names
// resolved at the exit, a plain HTTP proxy, and an HTTP CONNECT tunnel.
func TestProxyCurl(t *testing.T) {
	curl := testkit.NeedTool(t, "curl")
	web := webServer(t, "curl made it")
	u, _ := url.Parse(web.URL)
	_, port, _ := net.SplitHostPort(u.Host)
	p := newTestPair(t, pairConfig{B: func(c *Config) { c.Dynamic = []string{"127.0.0.1:0"} }})
	px := p.B.ForwardAddrs()[0].String()
	cases := []struct {
		name string
		args []string
	}{
		{"socks5-hostname", []string{"--socks5-hostname", px, "http://localhost:" + port + "/"}},
		{"http proxy", []string{"-x", "http://" + px, "http://127.0.0.1:" + port + "/"}},
		{"http CONNECT", []string{"-p", "-x", "http://" + px, "http://127.0.0.1:" + port + "/"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(curl, append([]string{"-sS", "--noproxy", "", "--max-time", "20"}, tc.args...)...).CombinedOutput()
			if err != nil || string(out) != "curl made it" {
				t.Fatalf("curl %v: %v\n%s", tc.args, err, out)
			}
		})
	}
	if n := p.A.Stats().StreamsOpened.Load(); n < int64(len(cases)) {
		t.Errorf("the peer opened %d streams for %d requests", n, len(cases))
	}
}

// TestProxyHostUnreachable: a -D request whose host the peer cannot
// resolve is answered with SOCKS5 reply 0x04 (host unreachable), not 0x05
// (connection refused): the exit's dial failed for its name, and says so
// with its own reason code (engine.CodeUnreachable).
func TestProxyHostUnreachable(t *testing.T) {
	p := newTestPair(t, pairConfig{
		A: func(c *Config) {
			c.AllowTargets = forward.MustTargetPolicy("nowhere.example:80")
			c.dialTarget = func(context.Context, string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nowhere.example", IsNotFound: true}}
			}
		},
		B: func(c *Config) { c.Dynamic = []string{"127.0.0.1:0"} },
	})
	c := testkit.Dial(t, p.B.ForwardAddrs()[0])
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // hang guard
	name := "nowhere.example"
	req := append([]byte{5, 1, 0, 5, 1, 0, 3, byte(len(name))}, name...)
	if _, err := c.Write(append(req, 0, 80)); err != nil {
		t.Fatal(err)
	}
	var b [6]byte // method selection, then the reply's first four bytes
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatal(err)
	}
	if b[0] != 5 || b[1] != 0 || b[2] != 5 || b[3] != 4 {
		t.Fatalf("SOCKS5 answer % x; want reply 0x04 (host unreachable)", b)
	}
}

// TestDialCode: what each kind of dial failure is called on the wire.
func TestDialCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want engine.Code
	}{
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", IsNotFound: true}}, engine.CodeUnreachable},
		{&net.OpError{Op: "dial", Err: syscall.EHOSTUNREACH}, engine.CodeUnreachable},
		{&net.OpError{Op: "dial", Err: syscall.ENETUNREACH}, engine.CodeUnreachable},
		{context.DeadlineExceeded, engine.CodeTimeout},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, engine.CodeDialFailed},
	} {
		if got := dialCode(tc.err); got != tc.want {
			t.Errorf("dialCode(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if !errors.Is(engine.CodeUnreachable.Err(), engine.ErrDialFailed) {
		t.Error("an unreachable host is not a dial failure to errors.Is")
	}
}
