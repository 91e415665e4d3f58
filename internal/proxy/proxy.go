package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/sockmux/sockmux/engine"
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
//	engine.CodeUnreachable 0x04 host unreachable         502 Bad Gateway
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
		case engine.CodeUnreachable:
			return socksReply(socksHostUnreachable)
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
