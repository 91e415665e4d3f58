package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sockmux/engine"
	"strconv"
	"strings"
)

// The proxy handshake of -D: one port speaks SOCKS5 (RFC 1928, with the
// username/password method of RFC 1929) and HTTP CONNECT (RFC 9110 §9.3.6,
// message syntax of RFC 9112). The first byte tells them apart: 0x05 is
// SOCKS5, 0x04 is SOCKS4 (refused), a token character starts an HTTP request
// line, anything else gets an HTTP 400.
//
// ProxyHandshake reads exactly the bytes of the request and nothing more
// (bytes the bufio.Reader had already buffered stay in it), so what the
// client pipelined after its request is still in the reader for the tunnel.

// Proxy handshake errors. ProxyHandshake wraps them with %w after writing
// the client the matching error reply.
var (
	// ErrProxyProtocol is a request that does not parse, or a client that
	// went away in the middle of it.
	ErrProxyProtocol = errors.New("malformed proxy request")
	// ErrProxyAuth is a client with no acceptable authentication method or
	// with wrong credentials.
	ErrProxyAuth = errors.New("proxy authentication failed")
	// ErrProxyUnsupported is a well-formed request for something sockmux
	// does not do: a SOCKS command other than CONNECT, an unknown SOCKS
	// address type, an HTTP method other than CONNECT, SOCKS4, HTTP/2.
	ErrProxyUnsupported = errors.New("proxy request not supported")
)

// ProxyKind is the protocol a proxy client spoke.
type ProxyKind uint8

// Proxy kinds. The zero ProxyKind is no protocol.
const (
	ProxySOCKS5      ProxyKind = 1 // SOCKS5, RFC 1928
	ProxyHTTPConnect ProxyKind = 2 // HTTP CONNECT, RFC 9110 §9.3.6
	// ProxyHTTPForward is a plain-HTTP proxy request ("GET http://host/path
	// HTTP/1.1", what curl -x sends for an http URL): it is carried as a
	// tunnel to host, whose first bytes are the request rewritten for the
	// server (ProxyRequest.Request).
	ProxyHTTPForward ProxyKind = 3
)

// String names the protocol: "socks5" or "http-connect".
func (k ProxyKind) String() string {
	switch k {
	case ProxySOCKS5:
		return "socks5"
	case ProxyHTTPConnect:
		return "http-connect"
	case ProxyHTTPForward:
		return "http-forward"
	}
	return fmt.Sprintf("proxy kind %d", uint8(k))
}

// ProxyAuth is the username and password a proxy requires: SOCKS5
// username/password (RFC 1929) or HTTP Proxy-Authorization: Basic. A nil
// *ProxyAuth means the proxy requires none.
type ProxyAuth struct{ User, Password string }

// ProxyRequest is what a proxy client asked for.
type ProxyRequest struct {
	Kind ProxyKind
	// Target is "host:port" as net.JoinHostPort makes it (IPv6 in
	// brackets), port 1..65535. An IP address is in canonical form (an
	// IPv4-mapped IPv6 address becomes IPv4); a name is as the client sent
	// it, letters, digits, '-', '_' and '.' only, and never one whose last
	// label is a number (such as "127.1" or "0x7f.1", which some resolvers
	// would read as an address).
	Target string
	// Request, for ProxyHTTPForward, is the request head to send the
	// server first: origin-form request line, the client's headers without
	// its Proxy-* and hop-by-hop ones, and "Connection: close", so one client
	// connection carries one request.
	Request []byte
}

// ProxyHandshake reads a client's proxy request from br (reading the
// client) and writes any negotiation replies to w (the client), up to but
// not including the final reply, which depends on whether the target could
// be reached: send it with Reply. It detects SOCKS5 (first byte 0x05) or
// HTTP CONNECT ("CONNECT host:port HTTP/1.x", headers, blank line). auth,
// when not nil, is the username and password the client must give.
//
// It reads no further than the end of the request, so bytes the client sent
// after it are still in br. When the request fails because of the client,
// ProxyHandshake writes the proper error reply to w and returns an error
// matching ErrProxyProtocol, ErrProxyAuth or ErrProxyUnsupported; the caller
// then closes the connection. A client that ends the connection part way
// gets no reply and an error matching ErrProxyProtocol and io.EOF (nothing
// sent) or io.ErrUnexpectedEOF; other read and write errors are returned
// wrapped, matching none of the sentinels.
func ProxyHandshake(br *bufio.Reader, w io.Writer, auth *ProxyAuth) (ProxyRequest, error) {
	b, err := br.Peek(1)
	if err != nil {
		return ProxyRequest{}, proxyReadError("first byte", err, true)
	}
	switch c := b[0]; {
	case c == socksVersion:
		return socks5Handshake(br, w, auth)
	case c == socks4Version:
		return ProxyRequest{}, proxyFail(w, socks4Rejected[:], ErrProxyUnsupported, "SOCKS4 (only SOCKS5 is served)")
	case isHTTPTokenChar(c):
		return httpConnectHandshake(br, w, auth)
	default:
		return ProxyRequest{}, proxyFail(w, httpError(400, "", "not a SOCKS5 or HTTP proxy request"), ErrProxyProtocol,
			fmt.Sprintf("first byte 0x%02x is neither SOCKS5 nor HTTP", c))
	}
}

// Reply is the final reply to send the client once the target was reached
// (ok) or could not be (code says why):
//
//	code            SOCKS5 REP                    HTTP
//	engine.CodeRefused     0x02 not allowed by ruleset   403 Forbidden
//	engine.CodeDialFailed  0x05 connection refused       502 Bad Gateway
//	engine.CodeTimeout     0x06 TTL expired              504 Gateway Timeout
//	anything else   0x01 general failure          502 Bad Gateway
//
// A SOCKS5 reply names BND.ADDR 0.0.0.0:0, since the connection leaves at
// the peer. Reply returns nil for a zero ProxyRequest.
func (r ProxyRequest) Reply(ok bool, code engine.Code) []byte {
	switch r.Kind {
	case ProxySOCKS5:
		if ok {
			return socksReply(socksSucceeded)
		}
		switch code {
		case engine.CodeRefused:
			return socksReply(socksNotAllowed)
		case engine.CodeDialFailed:
			return socksReply(socksConnRefused)
		case engine.CodeTimeout:
			return socksReply(socksTTLExpired)
		}
		return socksReply(socksGeneralFailure)
	case ProxyHTTPConnect, ProxyHTTPForward:
		if ok {
			if r.Kind == ProxyHTTPForward {
				return nil // the server's own response is the reply
			}
			return []byte(httpEstablished)
		}
		status := 502
		switch code {
		case engine.CodeRefused:
			status = 403
		case engine.CodeTimeout:
			status = 504
		}
		return httpError(status, "", code.String())
	}
	return nil
}

// fail writes reply to w and returns the sentinel wrapped with what went
// wrong; a failed write is reported too.
func proxyFail(w io.Writer, reply []byte, sentinel error, what string) error {
	if _, err := w.Write(reply); err != nil {
		return fmt.Errorf("%w: %s (writing the error reply: %w)", sentinel, what, err)
	}
	return fmt.Errorf("%w: %s", sentinel, what)
}

// readError wraps an error reading the request. An end of input is the
// client's fault (ErrProxyProtocol); at the very start it is io.EOF, later
// io.ErrUnexpectedEOF.
func proxyReadError(what string, err error, atStart bool) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		if atStart && err == io.EOF {
			return fmt.Errorf("%w: connection closed before the %s: %w", ErrProxyProtocol, what, io.EOF)
		}
		return fmt.Errorf("%w: connection closed in the %s: %w", ErrProxyProtocol, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("proxy handshake: reading the %s: %w", what, err)
}

func proxyWrite(w io.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("proxy handshake: writing a reply: %w", err)
	}
	return nil
}

// SOCKS5 (RFC 1928), all integers big-endian.
//
// Greeting, client to proxy, and the method selection in reply:
//
//	+-----+----------+------------------+        +-----+--------+
//	| VER | NMETHODS | METHODS          |        | VER | METHOD |
//	|  5  |    1     | NMETHODS bytes   |        |  5  |   1    |
//	+-----+----------+------------------+        +-----+--------+
//
// Username/password sub-negotiation (RFC 1929), when METHOD is 0x02:
//
//	+-----+------+----------+------+----------+        +-----+--------+
//	| VER | ULEN | UNAME    | PLEN | PASSWD   |        | VER | STATUS |
//	|  1  |  1   | ULEN     |  1   | PLEN     |        |  1  | 0 = ok |
//	+-----+------+----------+------+----------+        +-----+--------+
//
// Request, and the reply (the last one, sent by Reply, or an error reply):
//
//	+-----+-----+-----+------+----------+----------+
//	| VER | CMD | RSV | ATYP | DST.ADDR | DST.PORT |
//	|  5  |  1  |  0  |  1   | variable |    2     |
//	+-----+-----+-----+------+----------+----------+
//	+-----+-----+-----+------+----------+----------+
//	| VER | REP | RSV | ATYP | BND.ADDR | BND.PORT |
//	|  5  |  1  |  0  |  1   | 0.0.0.0  |    0     |
//	+-----+-----+-----+------+----------+----------+
//
// ATYP 0x01 is 4 bytes of IPv4, 0x04 16 bytes of IPv6, 0x03 a length byte
// and that many bytes of domain name (1..255). RSV is not checked.
const (
	socksVersion         = 0x05
	socks4Version        = 0x04
	socksPasswordVersion = 0x01

	socksMethodNone       = 0x00
	socksMethodPassword   = 0x02
	socksMethodNoneUsable = 0xFF

	socksPasswordOK     = 0x00
	socksPasswordFailed = 0x01

	socksCmdConnect = 0x01 // BIND 0x02 and UDP ASSOCIATE 0x03 are not served

	socksAtypIPv4   = 0x01
	socksAtypDomain = 0x03
	socksAtypIPv6   = 0x04

	socksSucceeded       = 0x00
	socksGeneralFailure  = 0x01
	socksNotAllowed      = 0x02
	socksConnRefused     = 0x05
	socksTTLExpired      = 0x06
	socksCmdUnsupported  = 0x07
	socksAtypUnsupported = 0x08
)

// socks4Rejected is the SOCKS4 reply "request rejected or failed" (VN 0,
// CD 91, DSTPORT 0, DSTIP 0), sent to a SOCKS4 client.
var socks4Rejected = [8]byte{0x00, 0x5B}

// socksReply is a SOCKS5 reply with code rep and BND.ADDR 0.0.0.0:0.
func socksReply(rep byte) []byte {
	return []byte{socksVersion, rep, 0x00, socksAtypIPv4, 0, 0, 0, 0, 0, 0}
}

func socks5Handshake(br *bufio.Reader, w io.Writer, auth *ProxyAuth) (ProxyRequest, error) {
	var buf [255]byte
	if _, err := io.ReadFull(br, buf[:2]); err != nil {
		return ProxyRequest{}, proxyReadError("SOCKS5 greeting", err, false)
	}
	methods := buf[:buf[1]]
	if _, err := io.ReadFull(br, methods); err != nil {
		return ProxyRequest{}, proxyReadError("SOCKS5 greeting", err, false)
	}
	want := byte(socksMethodNone)
	if auth != nil {
		want = socksMethodPassword
	}
	if bytes.IndexByte(methods, want) < 0 {
		return ProxyRequest{}, proxyFail(w, []byte{socksVersion, socksMethodNoneUsable}, ErrProxyAuth,
			fmt.Sprintf("SOCKS5 client offers methods % x, not 0x%02x", methods, want))
	}
	if err := proxyWrite(w, []byte{socksVersion, want}); err != nil {
		return ProxyRequest{}, err
	}
	if auth != nil {
		if err := socksPassword(br, w, auth); err != nil {
			return ProxyRequest{}, err
		}
	}

	if _, err := io.ReadFull(br, buf[:4]); err != nil {
		return ProxyRequest{}, proxyReadError("SOCKS5 request", err, false)
	}
	ver, cmd, atyp := buf[0], buf[1], buf[3]
	if ver != socksVersion {
		return ProxyRequest{}, proxyFail(w, socksReply(socksGeneralFailure), ErrProxyProtocol,
			fmt.Sprintf("SOCKS5 request of version %d", ver))
	}
	var host string
	var hostOK bool
	switch atyp {
	case socksAtypIPv4:
		if _, err := io.ReadFull(br, buf[:4]); err != nil {
			return ProxyRequest{}, proxyReadError("SOCKS5 request", err, false)
		}
		host, hostOK = netip.AddrFrom4([4]byte(buf[:4])).String(), true
	case socksAtypIPv6:
		if _, err := io.ReadFull(br, buf[:16]); err != nil {
			return ProxyRequest{}, proxyReadError("SOCKS5 request", err, false)
		}
		host, hostOK = netip.AddrFrom16([16]byte(buf[:16])).Unmap().String(), true
	case socksAtypDomain:
		if _, err := io.ReadFull(br, buf[:1]); err != nil {
			return ProxyRequest{}, proxyReadError("SOCKS5 request", err, false)
		}
		name := buf[:buf[0]]
		if _, err := io.ReadFull(br, name); err != nil {
			return ProxyRequest{}, proxyReadError("SOCKS5 request", err, false)
		}
		host, hostOK = canonicalProxyHost(string(name))
		if !hostOK {
			host = string(name)
		}
	default:
		return ProxyRequest{}, proxyFail(w, socksReply(socksAtypUnsupported), ErrProxyUnsupported,
			fmt.Sprintf("SOCKS5 address type 0x%02x", atyp))
	}
	if _, err := io.ReadFull(br, buf[:2]); err != nil {
		return ProxyRequest{}, proxyReadError("SOCKS5 request", err, false)
	}
	port := int(buf[0])<<8 | int(buf[1])

	// The whole request is read; now judge it.
	if cmd != socksCmdConnect {
		return ProxyRequest{}, proxyFail(w, socksReply(socksCmdUnsupported), ErrProxyUnsupported,
			fmt.Sprintf("SOCKS5 command 0x%02x (only CONNECT is served)", cmd))
	}
	if !hostOK {
		return ProxyRequest{}, proxyFail(w, socksReply(socksAtypUnsupported), ErrProxyProtocol,
			fmt.Sprintf("SOCKS5 domain name %q", host))
	}
	if port == 0 {
		return ProxyRequest{}, proxyFail(w, socksReply(socksGeneralFailure), ErrProxyProtocol, "SOCKS5 request for port 0")
	}
	return ProxyRequest{Kind: ProxySOCKS5, Target: net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// socksPassword runs the RFC 1929 sub-negotiation. Empty names and
// passwords, which the RFC does not allow but some clients send, are
// accepted (and then fail unless they are what auth holds).
func socksPassword(br *bufio.Reader, w io.Writer, auth *ProxyAuth) error {
	var buf [255]byte
	if _, err := io.ReadFull(br, buf[:2]); err != nil {
		return proxyReadError("SOCKS5 username/password", err, false)
	}
	if buf[0] != socksPasswordVersion {
		return proxyFail(w, []byte{socksPasswordVersion, socksPasswordFailed}, ErrProxyProtocol,
			fmt.Sprintf("SOCKS5 username/password version %d", buf[0]))
	}
	user := buf[:buf[1]]
	if _, err := io.ReadFull(br, user); err != nil {
		return proxyReadError("SOCKS5 username/password", err, false)
	}
	u := string(user)
	if _, err := io.ReadFull(br, buf[:1]); err != nil {
		return proxyReadError("SOCKS5 username/password", err, false)
	}
	pass := buf[:buf[0]]
	if _, err := io.ReadFull(br, pass); err != nil {
		return proxyReadError("SOCKS5 username/password", err, false)
	}
	if !auth.matches(u, string(pass)) {
		return proxyFail(w, []byte{socksPasswordVersion, socksPasswordFailed}, ErrProxyAuth,
			fmt.Sprintf("SOCKS5 wrong username or password for %q", u))
	}
	return proxyWrite(w, []byte{socksPasswordVersion, socksPasswordOK})
}

// matches compares user and password with a's in constant time: both are
// always compared, and through their SHA-256 digests, so neither the time
// nor the lengths tell an attacker which part was wrong or how long it is.
func (a *ProxyAuth) matches(user, password string) bool {
	gu, wu := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(a.User))
	gp, wp := sha256.Sum256([]byte(password)), sha256.Sum256([]byte(a.Password))
	return subtle.ConstantTimeCompare(gu[:], wu[:])&subtle.ConstantTimeCompare(gp[:], wp[:]) == 1
}

// HTTP CONNECT (RFC 9110 §9.3.6, RFC 9112):
//
//	CONNECT host:port HTTP/1.1 CRLF        request line, authority form
//	Name: value CRLF                       headers, Proxy-Authorization read
//	CRLF                                   end of the request
//
// then, from the proxy, "HTTP/1.1 200 Connection established" CRLF CRLF
// and the tunnel. A bare LF ends a line too. The request line is at most
// httpMaxRequestLine bytes and the headers httpMaxHeaderBytes in at most
// httpMaxHeaderLines lines, each line ending counted.
const (
	httpMaxRequestLine = 8 << 10
	httpMaxHeaderBytes = 64 << 10
	httpMaxHeaderLines = 100

	httpEstablished = "HTTP/1.1 200 Connection established\r\n\r\n"
	httpAuthRealm   = `Proxy-Authenticate: Basic realm="sockmux"` + "\r\n"
)

var httpStatusText = map[int]string{
	400: "Bad Request",
	403: "Forbidden",
	405: "Method Not Allowed",
	407: "Proxy Authentication Required",
	414: "Request URI Too Long",
	431: "Request Header Fields Too Large",
	502: "Bad Gateway",
	504: "Gateway Timeout",
	505: "HTTP Version Not Supported",
}

// httpError is an HTTP/1.1 error response with the given extra header
// lines (each ending in CRLF) and a one-line plain-text body "sockmux:
// why"; it closes the connection.
func httpError(status int, extra, why string) []byte {
	body := "sockmux: " + why + "\n"
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, httpStatusText[status], extra, len(body), body)
}

// errHTTPLineTooLong is a line over its limit.
var errHTTPLineTooLong = errors.New("line too long")

func httpConnectHandshake(br *bufio.Reader, w io.Writer, auth *ProxyAuth) (ProxyRequest, error) {
	line, err := readHTTPLine(br, httpMaxRequestLine)
	if err == errHTTPLineTooLong {
		return ProxyRequest{}, proxyFail(w, httpError(414, "", "request line too long"), ErrProxyProtocol,
			fmt.Sprintf("HTTP request line over %d bytes", httpMaxRequestLine))
	}
	if err != nil {
		return ProxyRequest{}, proxyReadError("HTTP request line", err, false)
	}
	method, authority, version, ok := parseHTTPRequestLine(line)
	if !ok {
		return ProxyRequest{}, proxyFail(w, httpError(400, "", "malformed request line"), ErrProxyProtocol,
			fmt.Sprintf("HTTP request line %.80q", line))
	}
	if !strings.HasPrefix(version, "HTTP/1.") {
		return ProxyRequest{}, proxyFail(w, httpError(505, "", "only HTTP/1.x is served"), ErrProxyUnsupported,
			fmt.Sprintf("HTTP version %q", version))
	}

	// Read the headers even when the request line already decides the
	// answer, so the reply is not lost to a reset for unread input.
	var creds []string
	var kept [][]byte // headers to pass on, for ProxyHTTPForward
	used := 0
	for n := 0; ; n++ {
		line, err := readHTTPLine(br, httpMaxHeaderBytes-used)
		if err == errHTTPLineTooLong || (err == nil && n == httpMaxHeaderLines && !isBlankHTTPLine(line)) {
			return ProxyRequest{}, proxyFail(w, httpError(431, "", "request headers too large"), ErrProxyProtocol,
				fmt.Sprintf("HTTP headers over %d bytes or %d lines", httpMaxHeaderBytes, httpMaxHeaderLines))
		}
		if err != nil {
			return ProxyRequest{}, proxyReadError("HTTP headers", err, false)
		}
		used += len(line)
		if isBlankHTTPLine(line) {
			break
		}
		name, value, ok := parseHTTPHeaderLine(line)
		if !ok {
			return ProxyRequest{}, proxyFail(w, httpError(400, "", "malformed header"), ErrProxyProtocol,
				fmt.Sprintf("HTTP header line %.80q", line))
		}
		if strings.EqualFold(name, "Proxy-Authorization") {
			creds = append(creds, value)
		}
		if !httpHopByHop(name) {
			kept = append(kept, append([]byte(nil), trimHTTPEOL(line)...))
		}
	}

	req := ProxyRequest{Kind: ProxyHTTPConnect}
	var target string
	if method == "CONNECT" {
		if target, ok = parseProxyAuthority(authority); !ok {
			return ProxyRequest{}, proxyFail(w, httpError(400, "", "CONNECT needs host:port"), ErrProxyProtocol,
				fmt.Sprintf("HTTP CONNECT target %q", authority))
		}
	} else {
		rest, isHTTP := strings.CutPrefix(authority, "http://")
		if !isHTTP {
			return ProxyRequest{}, proxyFail(w, httpError(405, "Allow: CONNECT\r\n", "only CONNECT and http:// URLs are served"), ErrProxyUnsupported,
				fmt.Sprintf("HTTP method %q for %.80q", method, authority))
		}
		host, path := rest, "/"
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			host, path = rest[:i], rest[i:]
			if path[0] == '?' {
				path = "/" + path
			}
		}
		if !strings.Contains(strings.TrimPrefix(host, "["), "]:") && (strings.HasPrefix(host, "[") || !strings.Contains(host, ":")) {
			host += ":80"
		}
		if target, ok = parseProxyAuthority(host); !ok {
			return ProxyRequest{}, proxyFail(w, httpError(400, "", "bad host in the URL"), ErrProxyProtocol,
				fmt.Sprintf("HTTP proxy URL %.80q", authority))
		}
		head := []byte(method + " " + path + " " + version + "\r\n")
		for _, h := range kept {
			head = append(append(head, h...), "\r\n"...)
		}
		req.Kind, req.Request = ProxyHTTPForward, append(head, "Connection: close\r\n\r\n"...)
	}
	if auth != nil {
		good := false
		for _, c := range creds {
			if u, p, ok := basicCredentials(c); ok && auth.matches(u, p) {
				good = true
			}
		}
		if !good {
			what := "no Proxy-Authorization"
			if len(creds) > 0 {
				what = "wrong Proxy-Authorization"
			}
			return ProxyRequest{}, proxyFail(w, httpError(407, httpAuthRealm, "proxy authentication required"), ErrProxyAuth,
				"HTTP CONNECT with "+what)
		}
	}
	req.Target = target
	return req, nil
}

// httpHopByHop reports whether a request header is for the proxy hop, not
// the server.
func httpHopByHop(name string) bool {
	switch strings.ToLower(name) {
	case "proxy-authorization", "proxy-connection", "connection", "keep-alive", "te", "trailer", "upgrade":
		return true
	}
	return false
}

// readHTTPLine reads one line, its ending included, of at most limit bytes.
// The slice is valid until the next read from br.
func readHTTPLine(br *bufio.Reader, limit int) ([]byte, error) {
	var acc []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(acc)+len(frag) > limit {
			return nil, errHTTPLineTooLong
		}
		switch err {
		case nil:
			if acc == nil {
				return frag, nil
			}
			return append(acc, frag...), nil
		case bufio.ErrBufferFull:
			acc = append(acc, frag...)
			if len(acc) >= limit { // no line ending yet, so over the limit
				return nil, errHTTPLineTooLong
			}
		default:
			return nil, err
		}
	}
}

// trimHTTPEOL removes the line ending: CRLF or a bare LF.
func trimHTTPEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

func isBlankHTTPLine(line []byte) bool { return len(trimHTTPEOL(line)) == 0 }

// parseHTTPRequestLine splits "method SP target SP version": method a token,
// target visible ASCII, version "HTTP/" digit "." digit.
func parseHTTPRequestLine(line []byte) (method, target, version string, ok bool) {
	parts := strings.Split(string(trimHTTPEOL(line)), " ")
	if len(parts) != 3 {
		return "", "", "", false
	}
	method, target, version = parts[0], parts[1], parts[2]
	if !isHTTPToken(method) || target == "" {
		return "", "", "", false
	}
	for i := 0; i < len(target); i++ {
		if target[i] <= ' ' || target[i] >= 0x7f {
			return "", "", "", false
		}
	}
	v, ok := strings.CutPrefix(version, "HTTP/")
	if !ok || len(v) != 3 || !isDecimalDigit(v[0]) || v[1] != '.' || !isDecimalDigit(v[2]) {
		return "", "", "", false
	}
	return method, target, version, true
}

// parseHTTPHeaderLine splits "name: value". The name is a token right before
// the colon; the value has its surrounding spaces and tabs removed and may
// not hold control characters other than tab. A line folded onto the one
// before (starting with space or tab) is refused, as RFC 9112 allows.
func parseHTTPHeaderLine(line []byte) (name, value string, ok bool) {
	s := string(trimHTTPEOL(line))
	name, value, found := strings.Cut(s, ":")
	if !found || !isHTTPToken(name) {
		return "", "", false
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return "", "", false
		}
	}
	return name, value, true
}

// basicCredentials decodes a Proxy-Authorization value of the Basic
// scheme (RFC 7617): "Basic" base64(user ":" password).
func basicCredentials(v string) (user, password string, ok bool) {
	scheme, rest, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimLeft(rest, " "))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(dec), ":")
}

// parseProxyAuthority parses an HTTP CONNECT target, "host:port" or
// "[ipv6]:port", into a ProxyRequest Target.
func parseProxyAuthority(s string) (string, bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", false
	}
	p, ok := parseProxyPort(port)
	if !ok {
		return "", false
	}
	bracketed := strings.HasPrefix(s, "[")
	if bracketed {
		// Only an IPv6 address goes in brackets.
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return "", false
		}
	}
	h, ok := canonicalProxyHost(host)
	if !ok {
		return "", false
	}
	return net.JoinHostPort(h, strconv.Itoa(p)), true
}

// parseProxyPort parses a port of 1..5 decimal digits with a value of
// 1..65535.
func parseProxyPort(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDecimalDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n >= 1 && n <= 65535
}

// canonicalProxyHost checks a target host: an IP address without a zone, given
// back in canonical form, or a host name (see validProxyHostname).
func canonicalProxyHost(h string) (string, bool) {
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", false
		}
		return a.Unmap().String(), true
	}
	return h, validProxyHostname(h)
}

// validProxyHostname reports whether h is a host name sockmux will ask the peer
// to dial: at most 255 bytes of labels of 1..63 letters, digits, '-' and
// '_', separated by dots, with one optional trailing dot. The last label may
// not be a number, decimal or 0x-hex: such a name is no DNS name, and some
// resolvers (inet_aton) would take "127.1" or "0x7f.1" for an address and
// so get past a policy written for names.
func validProxyHostname(h string) bool {
	if len(h) == 0 || len(h) > 255 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !isDecimalDigit(c) && !('a' <= c|0x20 && c|0x20 <= 'z') && c != '-' && c != '_' {
				return false
			}
		}
	}
	return !isNumericLabel(labels[len(labels)-1])
}

// isNumericLabel reports whether a label reads as a number: all decimal
// digits, or "0x" followed by hex digits (or nothing).
func isNumericLabel(l string) bool {
	digits := l
	hex := len(l) >= 2 && l[0] == '0' && l[1]|0x20 == 'x'
	if hex {
		digits = l[2:]
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if !isDecimalDigit(c) && !(hex && 'a' <= c|0x20 && c|0x20 <= 'f') {
			return false
		}
	}
	return true
}

func isDecimalDigit(c byte) bool { return '0' <= c && c <= '9' }

// isHTTPTokenChar reports whether c is an RFC 9110 tchar.
func isHTTPTokenChar(c byte) bool {
	if isDecimalDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'z') {
		return true
	}
	return c < 0x80 && strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isHTTPToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHTTPTokenChar(s[i]) {
			return false
		}
	}
	return true
}
