package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

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
