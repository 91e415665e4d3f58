package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/sockmux/sockmux/engine"
)

// proxySeeds are client byte streams for the fuzzer's corpus.
func proxySeeds() [][]byte {
	connect := socksRequest(1, 1, socksIPv4("10.0.0.1"), 80)
	return [][]byte{
		nil,
		{5},
		catBytes(socksGreeting(0), connect),
		catBytes(socksGreeting(0, 2), socksUserPass("alice", "s3cret"), connect, []byte("data")),
		catBytes(socksGreeting(2), socksUserPass("alice", "wrong"), connect),
		catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("example.com"), 443)),
		catBytes(socksGreeting(0), socksRequest(1, 4, socksIPv6("::1"), 22)),
		catBytes(socksGreeting(0), socksRequest(2, 1, socksIPv4("10.0.0.1"), 80)),
		catBytes(socksGreeting(0), []byte{5, 1, 0, 2}),
		{4, 1, 0, 80, 10, 0, 0, 1, 0},
		[]byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
		[]byte("CONNECT [::1]:443 HTTP/1.0\r\n" + proxyBasicAuthHeader("alice", "s3cret") + "\r\ndata"),
		[]byte("CONNECT 127.1:443 HTTP/1.1\n\n"),
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		[]byte("CONNECT h:1 HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
		[]byte("\x16\x03\x01"),
	}
}

// FuzzProxyHandshake feeds arbitrary client bytes to ProxyHandshake, with
// and without auth and through buffers of several sizes. It must never
// panic; a failure must match one of the three sentinels (a bytes.Reader
// only ever ends); a success must name a valid, canonical target.
func FuzzProxyHandshake(f *testing.F) {
	for _, s := range proxySeeds() {
		f.Add(s, false, uint16(0))
		f.Add(s, true, uint16(4096))
	}
	f.Fuzz(func(t *testing.T, data []byte, useAuth bool, bufSize uint16) {
		var auth *ProxyAuth
		if useAuth {
			auth = testProxyAuth
		}
		br := bufio.NewReaderSize(bytes.NewReader(data), 16+int(bufSize%8192))
		req, err := ProxyHandshake(br, io.Discard, auth)
		if err != nil {
			if !errors.Is(err, ErrProxyProtocol) && !errors.Is(err, ErrProxyAuth) && !errors.Is(err, ErrProxyUnsupported) {
				t.Fatalf("error %v matches no sentinel", err)
			}
			if !sameRequest(req, ProxyRequest{}) {
				t.Fatalf("failed handshake returned %+v", req)
			}
			return
		}
		if req.Kind != ProxySOCKS5 && req.Kind != ProxyHTTPConnect && req.Kind != ProxyHTTPForward {
			t.Fatalf("kind %v", req.Kind)
		}
		checkProxyTarget(t, req.Target)
		if useAuth && req.Kind == ProxySOCKS5 && !bytes.Contains(data, socksUserPass("alice", "s3cret")) {
			t.Fatalf("SOCKS5 with auth accepted %q without the credentials", data)
		}
		for _, c := range []engine.Code{engine.CodeNormal, engine.CodeRefused, engine.CodeDialFailed, engine.CodeTimeout, engine.Code(0xFFFF)} {
			if len(req.Reply(false, c)) == 0 || len(req.Reply(true, c)) == 0 {
				t.Fatalf("empty reply for %v", c)
			}
		}
	})
}

// checkProxyTarget fails tb unless target is host:port with a port of
// 1..65535, short enough for OPEN, and canonical (parsing it again gives it
// back).
func checkProxyTarget(tb testing.TB, target string) {
	tb.Helper()
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		tb.Fatalf("target %q: %v", target, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		tb.Fatalf("target %q: port %q", target, port)
	}
	if host == "" || len(target) > engine.MaxTargetLen {
		tb.Fatalf("target %q: empty host or too long", target)
	}
	if again, ok := parseProxyAuthority(target); !ok || again != target {
		tb.Fatalf("target %q parses again as %q, %v", target, again, ok)
	}
}

// FuzzProxyTarget checks the target parsers on their own: an accepted HTTP
// authority or SOCKS5 domain gives a valid target that parses back to
// itself.
func FuzzProxyTarget(f *testing.F) {
	for _, s := range []string{
		"example.com:443", "[::1]:443", "[::ffff:1.2.3.4]:80", "127.0.0.1:0", "127.1:80", "0x7f.1:80",
		"a..b:1", "[example.com]:1", "h:065535", "xn--bcher-kva.example.:8080", "[fe80::1%eth0]:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if target, ok := parseProxyAuthority(s); ok {
			checkProxyTarget(t, target)
		}
		if host, ok := canonicalProxyHost(s); ok {
			if again, ok := canonicalProxyHost(host); !ok || again != host {
				t.Fatalf("host %q -> %q -> %q, %v", s, host, again, ok)
			}
			checkProxyTarget(t, net.JoinHostPort(host, "1"))
		}
	})
}

func sameRequest(a, b ProxyRequest) bool {
	return a.Kind == b.Kind && a.Target == b.Target && string(a.Request) == string(b.Request)
}
