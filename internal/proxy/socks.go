package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

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
	socksHostUnreachable = 0x04
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
