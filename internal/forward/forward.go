package forward

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultBind is where a forward listens when its spec names no address:
// loopback, as ssh does without GatewayPorts.
const DefaultBind = "127.0.0.1"

// Forward is a parsed -L specification: listen on Bind and carry each
// connection to the peer, which dials Target.
type Forward struct {
	Bind   string // host:port to listen on
	Target string // host:port the peer dials
	UDP    bool   // datagrams, not a stream ("port/udp" in the spec)
}

func (f Forward) String() string {
	if f.UDP {
		return f.Bind + "/udp->" + f.Target
	}
	return f.Bind + "->" + f.Target
}

// ParseForward parses "[bind_addr:]port:host:hostport". IPv6 addresses are
// written in brackets ("[::1]:8080:[::1]:80"). Port 0 for the listening
// side picks a free port. "port/udp" makes it a UDP forward.
func ParseForward(spec string) (Forward, error) { return ParseForwardBind(spec, DefaultBind) }

// ParseForwardBind is ParseForward with the address a spec that names none
// listens on: "0.0.0.0" under ssh's -g (gateway ports).
func ParseForwardBind(spec, defaultBind string) (Forward, error) {
	parts, err := splitSpec(spec)
	if err != nil {
		return Forward{}, fmt.Errorf("%w %q: %v", ErrBadForward, spec, err)
	}
	var bind, lport, host, hport string
	switch len(parts) {
	case 3:
		bind, lport, host, hport = defaultBind, parts[0], parts[1], parts[2]
	case 4:
		bind, lport, host, hport = parts[0], parts[1], parts[2], parts[3]
		if bind == "" || bind == "*" {
			bind = "0.0.0.0"
		}
	default:
		return Forward{}, fmt.Errorf("%w %q: want [bind_addr:]port:host:hostport", ErrBadForward, spec)
	}
	udp := strings.HasSuffix(lport, "/udp")
	lport = strings.TrimSuffix(lport, "/udp")
	if _, err := parsePort(lport, true); err != nil {
		return Forward{}, fmt.Errorf("%w %q: listen port: %v", ErrBadForward, spec, err)
	}
	if host == "" {
		return Forward{}, fmt.Errorf("%w %q: empty target host", ErrBadForward, spec)
	}
	if _, err := parsePort(hport, false); err != nil {
		return Forward{}, fmt.Errorf("%w %q: target port: %v", ErrBadForward, spec, err)
	}
	return Forward{Bind: net.JoinHostPort(bind, lport), Target: net.JoinHostPort(host, hport), UDP: udp}, nil
}

func parsePort(s string, zeroOK bool) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 || (p == 0 && !zeroOK) {
		return 0, fmt.Errorf("%q is not a port", s)
	}
	return p, nil
}

// splitSpec splits on colons outside brackets and strips the brackets.
func splitSpec(s string) ([]string, error) {
	var parts []string
	for len(s) > 0 {
		if s[0] == '[' {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed '['")
			}
			parts = append(parts, s[1:end])
			s = s[end+1:]
			if s != "" && s[0] != ':' {
				return nil, fmt.Errorf("want ':' after ']'")
			}
		} else {
			i := strings.IndexByte(s, ':')
			if i < 0 {
				i = len(s)
			}
			parts = append(parts, s[:i])
			s = s[i:]
		}
		if s != "" {
			s = s[1:] // the colon
			if s == "" {
				parts = append(parts, "")
			}
		}
	}
	return parts, nil
}

// TargetSOCKS is the target of a -R forward whose connections get a SOCKS5
// and HTTP CONNECT proxy on this side: "-R 1080:socks".
const TargetSOCKS = "socks"

// ParseRemote parses a -R specification: "[bind_addr:]port:host:hostport",
// or "[bind_addr:]port:socks". The peer listens on Bind; this side dials
// Target (or serves a proxy, for TargetSOCKS).
func ParseRemote(spec string) (Forward, error) {
	parts, err := splitSpec(spec)
	if err == nil && len(parts) >= 2 && len(parts) <= 3 && parts[len(parts)-1] == TargetSOCKS {
		bind, port := DefaultBind, parts[0]
		if len(parts) == 3 {
			bind, port = parts[0], parts[1]
			if bind == "" || bind == "*" {
				bind = "0.0.0.0"
			}
		}
		if _, err := parsePort(port, true); err != nil {
			return Forward{}, fmt.Errorf("%w %q: listen port: %v", ErrBadForward, spec, err)
		}
		return Forward{Bind: net.JoinHostPort(bind, port), Target: TargetSOCKS}, nil
	}
	return ParseForward(spec)
}
