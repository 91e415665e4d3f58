package proxy

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Proxy targets: the host:port a client names, checked and made canonical.

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
