package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
)

// testProxyAuth is the username and password of the tests that need one.
var testProxyAuth = &ProxyAuth{User: "alice", Password: "s3cret"}

// cat joins byte slices.
func catBytes(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// socksGreeting is a SOCKS5 greeting offering methods.
func socksGreeting(methods ...byte) []byte {
	return append([]byte{5, byte(len(methods))}, methods...)
}

// socksUserPass is an RFC 1929 username/password request.
func socksUserPass(user, pass string) []byte {
	b := append([]byte{1, byte(len(user))}, user...)
	b = append(b, byte(len(pass)))
	return append(b, pass...)
}

// socksRequest is a SOCKS5 request; addr is DST.ADDR as sent (with the
// length byte for a domain, see socksDomain).
func socksRequest(cmd, atyp byte, addr []byte, port uint16) []byte {
	b := append([]byte{5, cmd, 0, atyp}, addr...)
	return append(b, byte(port>>8), byte(port))
}

// socksDomain is DST.ADDR for ATYP 0x03.
func socksDomain(name string) []byte { return append([]byte{byte(len(name))}, name...) }

func socksIPv4(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
func socksIPv6(s string) []byte {
	a := netip.MustParseAddr(s).As16()
	return a[:]
}

// proxyBasicAuthHeader is a Proxy-Authorization header line for user and pass.
func proxyBasicAuthHeader(user, pass string) string {
	return "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n"
}

// proxyHandshakeResult is what runProxyHandshake saw.
type proxyHandshakeResult struct {
	req   ProxyRequest
	err   error
	wrote []byte // what ProxyHandshake wrote to the client
	rest  []byte // what was left to read after it
}

// runProxyHandshake runs ProxyHandshake on the client bytes in, read through a
// bufio.Reader of bufSize (0: the default), and collects the outcome.
func runProxyHandshake(tb testing.TB, in []byte, auth *ProxyAuth, bufSize int) proxyHandshakeResult {
	tb.Helper()
	if bufSize == 0 {
		bufSize = 4096
	}
	br := bufio.NewReaderSize(bytes.NewReader(in), bufSize)
	var w bytes.Buffer
	req, err := ProxyHandshake(br, &w, auth)
	rest, rerr := io.ReadAll(br)
	if rerr != nil {
		tb.Fatalf("reading what is left: %v", rerr)
	}
	return proxyHandshakeResult{req: req, err: err, wrote: w.Bytes(), rest: rest}
}

// socksReplyBytes is the 10-byte SOCKS5 reply with code rep and BND 0.0.0.0:0.
func socksReplyBytes(rep byte) []byte { return []byte{5, rep, 0, 1, 0, 0, 0, 0, 0, 0} }

func TestProxySOCKS5Good(t *testing.T) {
	withAuth := catBytes([]byte{5, 2}, []byte{1, 0})
	for _, tc := range []struct {
		name   string
		auth   *ProxyAuth
		in     []byte
		target string
		wrote  []byte
	}{
		{"ipv4", nil, catBytes(socksGreeting(0), socksRequest(1, 1, socksIPv4("192.0.2.7"), 443)), "192.0.2.7:443", []byte{5, 0}},
		{"ipv6", nil, catBytes(socksGreeting(0), socksRequest(1, 4, socksIPv6("2001:db8::1"), 22)), "[2001:db8::1]:22", []byte{5, 0}},
		{"ipv4-mapped ipv6 is ipv4", nil, catBytes(socksGreeting(0), socksRequest(1, 4, socksIPv6("::ffff:127.0.0.1"), 80)), "127.0.0.1:80", []byte{5, 0}},
		{"domain", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("www.example.com"), 8080)), "www.example.com:8080", []byte{5, 0}},
		{"domain with trailing dot", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("example.com."), 80)), "example.com.:80", []byte{5, 0}},
		{"domain of 255 bytes", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain(proxyName255), 80)), proxyName255 + ":80", []byte{5, 0}},
		{"domain holding an ipv4 (curl --socks5-hostname)", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("127.0.0.1"), 8080)), "127.0.0.1:8080", []byte{5, 0}},
		{"domain holding an ipv6", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("::1"), 8080)), "[::1]:8080", []byte{5, 0}},
		{"port 65535", nil, catBytes(socksGreeting(0), socksRequest(1, 1, socksIPv4("10.0.0.1"), 65535)), "10.0.0.1:65535", []byte{5, 0}},
		{"several methods offered", nil, catBytes(socksGreeting(2, 1, 0x80, 0), socksRequest(1, 1, socksIPv4("10.0.0.1"), 1)), "10.0.0.1:1", []byte{5, 0}},
		{"reserved byte ignored", nil, catBytes(socksGreeting(0), []byte{5, 1, 0xAA, 1, 10, 0, 0, 1, 0, 80}), "10.0.0.1:80", []byte{5, 0}},
		{"auth ipv4", testProxyAuth, catBytes(socksGreeting(2), socksUserPass("alice", "s3cret"), socksRequest(1, 1, socksIPv4("192.0.2.7"), 443)), "192.0.2.7:443", withAuth},
		{"auth domain, none offered too", testProxyAuth, catBytes(socksGreeting(0, 2), socksUserPass("alice", "s3cret"), socksRequest(1, 3, socksDomain("example.com"), 443)), "example.com:443", withAuth},
		{"auth ipv6", testProxyAuth, catBytes(socksGreeting(2), socksUserPass("alice", "s3cret"), socksRequest(1, 4, socksIPv6("::1"), 443)), "[::1]:443", withAuth},
		{"auth empty password", &ProxyAuth{User: "bob"}, catBytes(socksGreeting(2), socksUserPass("bob", ""), socksRequest(1, 1, socksIPv4("10.0.0.1"), 80)), "10.0.0.1:80", withAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{16, 0} {
				r := runProxyHandshake(t, tc.in, tc.auth, size)
				testkit.WantErr(t, "ProxyHandshake", r.err, nil)
				if want := (ProxyRequest{Kind: ProxySOCKS5, Target: tc.target}); !sameRequest(r.req, want) {
					t.Fatalf("request %+v, want %+v", r.req, want)
				}
				if !bytes.Equal(r.wrote, tc.wrote) {
					t.Fatalf("wrote % x, want % x", r.wrote, tc.wrote)
				}
				if len(r.rest) != 0 {
					t.Fatalf("%d bytes left unread: % x", len(r.rest), r.rest)
				}
			}
		})
	}
}

// proxyName255 is a valid host name of 255 bytes: four labels of 63.
var proxyName255 = strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 63)

func TestProxySOCKS5Errors(t *testing.T) {
	connect := socksRequest(1, 1, socksIPv4("10.0.0.1"), 80)
	for _, tc := range []struct {
		name  string
		auth  *ProxyAuth
		in    []byte
		wrote []byte
		err   error
		also  error // a second error the result must match
	}{
		{"nothing sent", nil, nil, nil, ErrProxyProtocol, io.EOF},
		{"greeting cut", nil, []byte{5}, nil, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"methods cut", nil, []byte{5, 2, 0}, nil, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"no methods", nil, []byte{5, 0}, []byte{5, 0xFF}, ErrProxyAuth, nil},
		{"auth wanted but none offered", testProxyAuth, catBytes(socksGreeting(0), connect), []byte{5, 0xFF}, ErrProxyAuth, nil},
		{"no auth but only password offered", nil, catBytes(socksGreeting(2), connect), []byte{5, 0xFF}, ErrProxyAuth, nil},
		{"wrong password", testProxyAuth, catBytes(socksGreeting(2), socksUserPass("alice", "s3creT"), connect), []byte{5, 2, 1, 1}, ErrProxyAuth, nil},
		{"wrong user", testProxyAuth, catBytes(socksGreeting(2), socksUserPass("alicia", "s3cret"), connect), []byte{5, 2, 1, 1}, ErrProxyAuth, nil},
		{"password a prefix", testProxyAuth, catBytes(socksGreeting(2), socksUserPass("alice", "s3cre"), connect), []byte{5, 2, 1, 1}, ErrProxyAuth, nil},
		{"empty credentials", testProxyAuth, catBytes(socksGreeting(2), socksUserPass("", ""), connect), []byte{5, 2, 1, 1}, ErrProxyAuth, nil},
		{"user/pass version 5", testProxyAuth, catBytes(socksGreeting(2), []byte{5, 5}, []byte("alice"), []byte{6}, []byte("s3cret"), connect), []byte{5, 2, 1, 1}, ErrProxyProtocol, nil},
		{"user/pass cut", testProxyAuth, catBytes(socksGreeting(2), []byte{1, 5, 'a', 'l'}), []byte{5, 2}, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"password cut", testProxyAuth, catBytes(socksGreeting(2), []byte{1, 5}, []byte("alice"), []byte{6, 's'}), []byte{5, 2}, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"request version 4", nil, catBytes(socksGreeting(0), []byte{4, 1, 0, 1, 10, 0, 0, 1, 0, 80}), catBytes([]byte{5, 0}, socksReplyBytes(1)), ErrProxyProtocol, nil},
		{"BIND", nil, catBytes(socksGreeting(0), socksRequest(2, 1, socksIPv4("10.0.0.1"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(7)), ErrProxyUnsupported, nil},
		{"UDP ASSOCIATE", nil, catBytes(socksGreeting(0), socksRequest(3, 1, socksIPv4("0.0.0.0"), 0)), catBytes([]byte{5, 0}, socksReplyBytes(7)), ErrProxyUnsupported, nil},
		{"unknown command", nil, catBytes(socksGreeting(0), socksRequest(9, 3, socksDomain("example.com"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(7)), ErrProxyUnsupported, nil},
		{"address type 2", nil, catBytes(socksGreeting(0), []byte{5, 1, 0, 2, 1, 2, 3, 4, 0, 80}), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyUnsupported, nil},
		{"address type 0xFF", nil, catBytes(socksGreeting(0), []byte{5, 1, 0, 0xFF}), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyUnsupported, nil},
		{"empty domain", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain(""), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"domain with a space", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("a b"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"domain with a NUL", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("evil.com\x00.ok"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"domain with a colon", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("a:b"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"domain ipv6 with zone", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("fe80::1%eth0"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"domain short ipv4", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("127.1"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"domain octal ipv4", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("0177.0.0.01"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"domain hex ipv4", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("0x7f.1"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"domain empty label", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("a..b"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"domain label of 64", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain(strings.Repeat("a", 64)+".com"), 80)), catBytes([]byte{5, 0}, socksReplyBytes(8)), ErrProxyProtocol, nil},
		{"port 0", nil, catBytes(socksGreeting(0), socksRequest(1, 1, socksIPv4("10.0.0.1"), 0)), catBytes([]byte{5, 0}, socksReplyBytes(1)), ErrProxyProtocol, nil},
		{"request cut", nil, catBytes(socksGreeting(0), []byte{5, 1, 0}), []byte{5, 0}, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"ipv4 cut", nil, catBytes(socksGreeting(0), []byte{5, 1, 0, 1, 10, 0}), []byte{5, 0}, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"ipv6 cut", nil, catBytes(socksGreeting(0), []byte{5, 1, 0, 4, 0, 0, 0}), []byte{5, 0}, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"domain length cut", nil, catBytes(socksGreeting(0), []byte{5, 1, 0, 3}), []byte{5, 0}, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"domain cut", nil, catBytes(socksGreeting(0), []byte{5, 1, 0, 3, 5, 'a'}), []byte{5, 0}, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"port cut", nil, catBytes(socksGreeting(0), []byte{5, 1, 0, 1, 10, 0, 0, 1, 0}), []byte{5, 0}, ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"SOCKS4", nil, []byte{4, 1, 0, 80, 10, 0, 0, 1, 0}, []byte{0, 0x5B, 0, 0, 0, 0, 0, 0}, ErrProxyUnsupported, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runProxyHandshake(t, tc.in, tc.auth, 0)
			testkit.WantErr(t, "ProxyHandshake", r.err, tc.err)
			if tc.also != nil && !errors.Is(r.err, tc.also) {
				t.Fatalf("error %v does not match %v", r.err, tc.also)
			}
			if !sameRequest(r.req, ProxyRequest{}) {
				t.Fatalf("failed handshake returned %+v", r.req)
			}
			if !bytes.Equal(r.wrote, tc.wrote) {
				t.Fatalf("wrote % x, want % x", r.wrote, tc.wrote)
			}
		})
	}
}

func TestProxyHTTPGood(t *testing.T) {
	for _, tc := range []struct {
		name   string
		auth   *ProxyAuth
		in     string
		target string
	}{
		{"plain", nil, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "example.com:443"},
		{"no headers", nil, "CONNECT example.com:443 HTTP/1.1\r\n\r\n", "example.com:443"},
		{"HTTP/1.0", nil, "CONNECT example.com:443 HTTP/1.0\r\n\r\n", "example.com:443"},
		{"bare LF", nil, "CONNECT example.com:443 HTTP/1.1\nHost: example.com\n\n", "example.com:443"},
		{"ipv4", nil, "CONNECT 192.0.2.1:8443 HTTP/1.1\r\nHost: 192.0.2.1:8443\r\n\r\n", "192.0.2.1:8443"},
		{"ipv6", nil, "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", "[::1]:443"},
		{"ipv6 long form", nil, "CONNECT [2001:0db8:0:0:0:0:0:1]:443 HTTP/1.1\r\n\r\n", "[2001:db8::1]:443"},
		{"ipv4-mapped", nil, "CONNECT [::ffff:10.0.0.1]:443 HTTP/1.1\r\n\r\n", "10.0.0.1:443"},
		{"leading zeros in port", nil, "CONNECT example.com:0443 HTTP/1.1\r\n\r\n", "example.com:443"},
		{"many headers", nil, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: curl/8.0\r\nProxy-Connection: Keep-Alive\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n", "example.com:443"},
		{"100 headers", nil, "CONNECT example.com:443 HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", 100) + "\r\n", "example.com:443"},
		{"auth ignored when not required", nil, "CONNECT example.com:443 HTTP/1.1\r\n" + proxyBasicAuthHeader("x", "y") + "\r\n", "example.com:443"},
		{"auth", testProxyAuth, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n" + proxyBasicAuthHeader("alice", "s3cret") + "\r\n", "example.com:443"},
		{"auth lower-case names", testProxyAuth, "CONNECT example.com:443 HTTP/1.1\r\nproxy-authorization: basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) + "\r\n\r\n", "example.com:443"},
		{"auth password with a colon", &ProxyAuth{User: "u", Password: "p:q"}, "CONNECT h:1 HTTP/1.1\r\n" + proxyBasicAuthHeader("u", "p:q") + "\r\n", "h:1"},
		{"auth second header good", testProxyAuth, "CONNECT h:1 HTTP/1.1\r\n" + proxyBasicAuthHeader("alice", "x") + proxyBasicAuthHeader("alice", "s3cret") + "\r\n", "h:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{16, 0} {
				r := runProxyHandshake(t, []byte(tc.in), tc.auth, size)
				testkit.WantErr(t, "ProxyHandshake", r.err, nil)
				if want := (ProxyRequest{Kind: ProxyHTTPConnect, Target: tc.target}); !sameRequest(r.req, want) {
					t.Fatalf("request %+v, want %+v", r.req, want)
				}
				if len(r.wrote) != 0 {
					t.Fatalf("wrote %q before the final reply", r.wrote)
				}
				if len(r.rest) != 0 {
					t.Fatalf("%d bytes left unread: %q", len(r.rest), r.rest)
				}
			}
		})
	}
}

// checkProxyHTTPError fails tb unless got is exactly one well-formed HTTP/1.1
// error response with status, a "sockmux: " text body, Connection: close
// and, when header is not "", that header line.
func checkProxyHTTPError(tb testing.TB, got []byte, status int, header string) {
	tb.Helper()
	line := fmt.Sprintf("HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	if !bytes.HasPrefix(got, []byte(line)) {
		tb.Fatalf("reply %q, want status line %q", got, line)
	}
	if header != "" && !bytes.Contains(got, []byte("\r\n"+header+"\r\n")) {
		tb.Fatalf("reply %q lacks header %q", got, header)
	}
	br := bufio.NewReader(bytes.NewReader(got))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("reply %q: %v", got, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("reply %q: body: %v", got, err)
	}
	if resp.StatusCode != status || !resp.Close || resp.ContentLength != int64(len(body)) ||
		!strings.HasPrefix(string(body), "sockmux: ") || !strings.HasSuffix(string(body), "\n") {
		tb.Fatalf("reply %q: status %d, close %v, length %d, body %q", got, resp.StatusCode, resp.Close, resp.ContentLength, body)
	}
	if br.Buffered() != 0 {
		tb.Fatalf("reply %q: %d bytes after the body", got, br.Buffered())
	}
}

func TestProxyHTTPErrors(t *testing.T) {
	const c = "CONNECT example.com:443 HTTP/1.1\r\n"
	for _, tc := range []struct {
		name   string
		auth   *ProxyAuth
		in     string
		status int    // 0: nothing written
		header string // a header line the reply must have
		err    error
		also   error
	}{
		{"GET", nil, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 405, "Allow: CONNECT", ErrProxyUnsupported, nil},
		{"POST", nil, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "Allow: CONNECT", ErrProxyUnsupported, nil},
		{"lower-case connect", nil, "connect example.com:443 HTTP/1.1\r\n\r\n", 405, "Allow: CONNECT", ErrProxyUnsupported, nil},
		{"TLS ClientHello", nil, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "", ErrProxyProtocol, nil},
		{"NUL", nil, "\x00", 400, "", ErrProxyProtocol, nil},
		{"method only", nil, "CONNECT\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"no version", nil, "CONNECT example.com:443\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"double space", nil, "CONNECT  example.com:443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"four parts", nil, "CONNECT example.com:443 HTTP/1.1 x\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"tab in target", nil, "CONNECT example.com:443\t HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"bad version", nil, "CONNECT example.com:443 FTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"version 1.10", nil, "CONNECT example.com:443 HTTP/1.10\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"HTTP/2.0", nil, "CONNECT example.com:443 HTTP/2.0\r\n\r\n", 505, "", ErrProxyUnsupported, nil},
		{"no port", nil, "CONNECT example.com HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"empty port", nil, "CONNECT example.com: HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"port 0", nil, "CONNECT example.com:0 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"port 65536", nil, "CONNECT example.com:65536 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"port +80", nil, "CONNECT example.com:+80 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"port by name", nil, "CONNECT example.com:https HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"port of six digits", nil, "CONNECT example.com:000443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"no host", nil, "CONNECT :443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"ipv6 without brackets", nil, "CONNECT ::1:443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"ipv6 without port", nil, "CONNECT [::1] HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"name in brackets", nil, "CONNECT [example.com]:443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"ipv4 in brackets", nil, "CONNECT [10.0.0.1]:443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"ipv6 zone", nil, "CONNECT [fe80::1%25eth0]:443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"short ipv4", nil, "CONNECT 127.1:443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"userinfo", nil, "CONNECT user@example.com:443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"absolute URL", nil, "CONNECT https://example.com:443 HTTP/1.1\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"header without colon", nil, c + "Host example.com\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"space before colon", nil, c + "Host : example.com\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"empty header name", nil, c + ": x\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"folded header", nil, c + "X-A: b\r\n  c\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"NUL in header value", nil, c + "X-A: b\x00c\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"CR in header value", nil, c + "X-A: b\rc\r\n\r\n", 400, "", ErrProxyProtocol, nil},
		{"request line too long", nil, "CONNECT " + strings.Repeat("a", httpMaxRequestLine) + ":443 HTTP/1.1\r\n\r\n", 414, "", ErrProxyProtocol, nil},
		{"request line without end", nil, strings.Repeat("A", httpMaxRequestLine+1), 414, "", ErrProxyProtocol, nil},
		{"101 header lines", nil, c + strings.Repeat("X-A: b\r\n", 101) + "\r\n", 431, "", ErrProxyProtocol, nil},
		{"headers over 64 KiB", nil, c + strings.Repeat("X-A: "+strings.Repeat("b", 993)+"\r\n", 66) + "\r\n", 431, "", ErrProxyProtocol, nil},
		{"one header over 64 KiB", nil, c + "X-A: " + strings.Repeat("b", httpMaxHeaderBytes) + "\r\n\r\n", 431, "", ErrProxyProtocol, nil},
		{"no Proxy-Authorization", testProxyAuth, c + "Host: example.com:443\r\n\r\n", 407, `Proxy-Authenticate: Basic realm="sockmux"`, ErrProxyAuth, nil},
		{"wrong password", testProxyAuth, c + proxyBasicAuthHeader("alice", "wrong") + "\r\n", 407, `Proxy-Authenticate: Basic realm="sockmux"`, ErrProxyAuth, nil},
		{"wrong user", testProxyAuth, c + proxyBasicAuthHeader("bob", "s3cret") + "\r\n", 407, `Proxy-Authenticate: Basic realm="sockmux"`, ErrProxyAuth, nil},
		{"no colon in credentials", testProxyAuth, c + "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alices3cret")) + "\r\n\r\n", 407, `Proxy-Authenticate: Basic realm="sockmux"`, ErrProxyAuth, nil},
		{"bad base64", testProxyAuth, c + "Proxy-Authorization: Basic !!!!\r\n\r\n", 407, `Proxy-Authenticate: Basic realm="sockmux"`, ErrProxyAuth, nil},
		{"Bearer", testProxyAuth, c + "Proxy-Authorization: Bearer YWxpY2U6czNjcmV0\r\n\r\n", 407, `Proxy-Authenticate: Basic realm="sockmux"`, ErrProxyAuth, nil},
		{"credentials in another header", testProxyAuth, c + "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) + "\r\n\r\n", 407, `Proxy-Authenticate: Basic realm="sockmux"`, ErrProxyAuth, nil},
		{"cut in the request line", nil, "CONNECT example.com:4", 0, "", ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"cut in the headers", nil, c + "Host: exa", 0, "", ErrProxyProtocol, io.ErrUnexpectedEOF},
		{"no blank line", nil, c + "Host: example.com\r\n", 0, "", ErrProxyProtocol, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{16, 0} {
				r := runProxyHandshake(t, []byte(tc.in), tc.auth, size)
				testkit.WantErr(t, "ProxyHandshake", r.err, tc.err)
				if tc.also != nil && !errors.Is(r.err, tc.also) {
					t.Fatalf("error %v does not match %v", r.err, tc.also)
				}
				if !sameRequest(r.req, ProxyRequest{}) {
					t.Fatalf("failed handshake returned %+v", r.req)
				}
				if tc.status == 0 {
					if len(r.wrote) != 0 {
						t.Fatalf("wrote %q, want nothing", r.wrote)
					}
					continue
				}
				checkProxyHTTPError(t, r.wrote, tc.status, tc.header)
			}
		})
	}
}

// TestProxyHTTPErrorBytes pins the exact bytes of two handshake replies.
func TestProxyHTTPErrorBytes(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		auth     *ProxyAuth
	}{
		{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Type: text/plain; charset=utf-8\r\n" +
			"Content-Length: 50\r\nConnection: close\r\n\r\nsockmux: only CONNECT and http:// URLs are served\n", nil},
		{"CONNECT h:1 HTTP/1.1\r\n\r\n", "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"sockmux\"\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 39\r\nConnection: close\r\n\r\nsockmux: proxy authentication required\n", testProxyAuth},
	} {
		r := runProxyHandshake(t, []byte(tc.in), tc.auth, 0)
		if string(r.wrote) != tc.want {
			t.Errorf("%q: wrote\n%q, want\n%q", tc.in, r.wrote, tc.want)
		}
	}
}

func TestProxyReply(t *testing.T) {
	socks := ProxyRequest{Kind: ProxySOCKS5, Target: "h:1"}
	web := ProxyRequest{Kind: ProxyHTTPConnect, Target: "h:1"}
	for _, tc := range []struct {
		ok     bool
		code   engine.Code
		rep    byte
		status int
	}{
		{true, engine.CodeNormal, 0x00, 200},
		{true, engine.CodeRefused, 0x00, 200}, // ok wins over the code
		{false, engine.CodeRefused, 0x02, 403},
		{false, engine.CodeDialFailed, 0x05, 502},
		{false, engine.CodeTimeout, 0x06, 504},
		{false, engine.CodeNormal, 0x01, 502},
		{false, engine.CodeInternal, 0x01, 502},
		{false, engine.CodeAuth, 0x01, 502},
		{false, engine.CodeShutdown, 0x01, 502},
		{false, engine.Code(999), 0x01, 502},
	} {
		name := fmt.Sprintf("ok=%v/%v", tc.ok, tc.code)
		if got, want := socks.Reply(tc.ok, tc.code), socksReplyBytes(tc.rep); !bytes.Equal(got, want) {
			t.Errorf("%s: SOCKS5 reply % x, want % x", name, got, want)
		}
		got := web.Reply(tc.ok, tc.code)
		if tc.ok {
			if want := "HTTP/1.1 200 Connection established\r\n\r\n"; string(got) != want {
				t.Errorf("%s: HTTP reply %q, want %q", name, got, want)
			}
			continue
		}
		checkProxyHTTPError(t, got, tc.status, "")
		if body := "sockmux: " + tc.code.String() + "\n"; !bytes.HasSuffix(got, []byte("\r\n\r\n"+body)) {
			t.Errorf("%s: HTTP reply %q, want body %q", name, got, body)
		}
	}
	const want403 = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\nConnection: close\r\n\r\nsockmux: refused\n"
	if got := web.Reply(false, engine.CodeRefused); string(got) != want403 {
		t.Errorf("HTTP refusal %q, want %q", got, want403)
	}
	if got := (ProxyRequest{}).Reply(true, 0); got != nil {
		t.Errorf("zero request's reply % x, want nil", got)
	}
	// Each reply is the caller's to keep.
	a := socks.Reply(true, 0)
	a[1] = 0xEE
	if b := socks.Reply(true, 0); b[1] != 0 {
		t.Errorf("replies share memory")
	}
	for k, want := range map[ProxyKind]string{ProxySOCKS5: "socks5", ProxyHTTPConnect: "http-connect", 0: "proxy kind 0"} {
		if k.String() != want {
			t.Errorf("ProxyKind(%d).String() = %q, want %q", uint8(k), k.String(), want)
		}
	}
}

// proxyCountingReader counts the bytes read from it.
type proxyCountingReader struct {
	r io.Reader
	n int
}

func (c *proxyCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestHTTPForward: a plain-HTTP proxy request becomes a tunnel to the host
// whose first bytes are the request in origin form, without the proxy's
// headers.
func TestHTTPForward(t *testing.T) {
	cases := []struct {
		in, target, head string
	}{
		{"GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n",
			"example.com:80", "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: close\r\n\r\n"},
		{"HEAD http://127.0.0.1:8080 HTTP/1.0\r\n\r\n", "127.0.0.1:8080", "HEAD / HTTP/1.0\r\nConnection: close\r\n\r\n"},
		{"GET http://[::1]:81/x HTTP/1.1\r\nHost: [::1]:81\r\n\r\n", "[::1]:81", "GET /x HTTP/1.1\r\nHost: [::1]:81\r\nConnection: close\r\n\r\n"},
		{"GET http://[::1]/ HTTP/1.1\r\n\r\n", "[::1]:80", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"},
	}
	for _, tc := range cases {
		var w bytes.Buffer
		req, err := ProxyHandshake(bufio.NewReader(strings.NewReader(tc.in)), &w, nil)
		if err != nil || req.Kind != ProxyHTTPForward || req.Target != tc.target || string(req.Request) != tc.head || w.Len() != 0 {
			t.Errorf("%q: %+v %q, %v, wrote %q", tc.in, req, req.Request, err, w.String())
		}
		if req.Reply(true, 0) != nil {
			t.Errorf("a forwarded request got a reply of its own")
		}
	}
	var w bytes.Buffer
	if _, err := ProxyHandshake(bufio.NewReader(strings.NewReader("GET ftp://x/ HTTP/1.1\r\n\r\n")), &w, nil); !errors.Is(err, ErrProxyUnsupported) {
		t.Errorf("ftp:// URL: %v", err)
	}
}
