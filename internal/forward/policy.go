package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrBadPattern is a target pattern that does not parse.
var ErrBadPattern = errors.New("bad target pattern")

// TargetPolicy is the set of targets this side will dial for its peer.
// A pattern is "host:port": host is a name with '*' globs (any run of
// characters, case ignored), an IP address, or a CIDR; port is a number or
// '*'. IPv6 addresses and CIDRs go in brackets: "[fd00::/8]:*". Names are
// matched as written, not resolved.
type TargetPolicy struct {
	patterns []targetPattern
	text     []string
	// also, when set, must allow a target too (Also); label names it.
	also  *TargetPolicy
	label string
}

// Also is the policy that allows what both p and q allow; a target q
// refuses is said to be refused by label (Refuser), for example "the
// permit-target of its key".
func (p *TargetPolicy) Also(q *TargetPolicy, label string) *TargetPolicy {
	c := *p
	if p.also != nil {
		c.also = p.also.Also(q, label)
		return &c
	}
	qc := *q
	qc.label = label
	c.also = &qc
	return &c
}

// Refuser says whether target is refused and, when a policy joined by
// Also refused it, that policy's label ("" for p's own patterns).
func (p *TargetPolicy) Refuser(target string) (label string, refused bool) {
	if !p.matches(target) {
		return p.label, true
	}
	if p.also != nil {
		return p.also.Refuser(target)
	}
	return "", false
}

type targetPattern struct {
	glob   string       // lower-case host glob, or ""
	prefix netip.Prefix // when the host is an address or a CIDR
	port   int          // -1 for any
}

// LoopbackTargets is the policy for a peer that did not authenticate.
var LoopbackTargets = MustTargetPolicy("127.0.0.0/8:*", "[::1]:*", "localhost:*")

// AnyTarget allows every target.
var AnyTarget = MustTargetPolicy("*:*")

// ParseTargetPolicy parses patterns.
func ParseTargetPolicy(patterns ...string) (*TargetPolicy, error) {
	p := &TargetPolicy{}
	for _, s := range patterns {
		tp, err := parseTargetPattern(s)
		if err != nil {
			return nil, err
		}
		p.patterns = append(p.patterns, tp)
		p.text = append(p.text, s)
	}
	return p, nil
}

// MustTargetPolicy is ParseTargetPolicy for patterns known to be good.
func MustTargetPolicy(patterns ...string) *TargetPolicy {
	p, err := ParseTargetPolicy(patterns...)
	if err != nil {
		panic(err)
	}
	return p
}

func parseTargetPattern(s string) (targetPattern, error) {
	host, port, err := splitHostPortPattern(s)
	if err != nil {
		return targetPattern{}, fmt.Errorf("%w %q: %v", ErrBadPattern, s, err)
	}
	tp := targetPattern{port: -1}
	if port != "*" {
		n, err := parsePort(port, false)
		if err != nil {
			return targetPattern{}, fmt.Errorf("%w %q: %v", ErrBadPattern, s, err)
		}
		tp.port = n
	}
	switch {
	case strings.Contains(host, "/"):
		pfx, err := netip.ParsePrefix(host)
		if err != nil {
			return targetPattern{}, fmt.Errorf("%w %q: %v", ErrBadPattern, s, err)
		}
		tp.prefix = pfx.Masked()
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			tp.prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		} else if host == "" {
			return targetPattern{}, fmt.Errorf("%w %q: empty host", ErrBadPattern, s)
		} else {
			tp.glob = strings.ToLower(host)
		}
	}
	return tp, nil
}

// splitHostPortPattern is net.SplitHostPort that also takes '*' and CIDRs.
func splitHostPortPattern(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 || len(s) < end+2 || s[end+1] != ':' {
			return "", "", errors.New("want [host]:port")
		}
		return s[1:end], s[end+2:], nil
	}
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", "", errors.New("want host:port")
	}
	if strings.Contains(s[:i], ":") {
		return "", "", errors.New("IPv6 hosts go in brackets")
	}
	return s[:i], s[i+1:], nil
}

// Allows reports whether target ("host:port") may be dialled.
func (p *TargetPolicy) Allows(target string) bool {
	_, refused := p.Refuser(target)
	return !refused
}

func (p *TargetPolicy) matches(target string) bool {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return false
	}
	n, err := parsePort(port, false)
	if err != nil {
		return false
	}
	addr, aerr := netip.ParseAddr(host)
	host = strings.ToLower(host)
	for _, tp := range p.patterns {
		if tp.port >= 0 && tp.port != n {
			continue
		}
		if tp.glob != "" {
			if glob(tp.glob, host) {
				return true
			}
			continue
		}
		if aerr == nil && tp.prefix.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

func (p *TargetPolicy) String() string {
	s := strings.Join(p.text, ",")
	if p.also != nil {
		s += " and " + p.also.String()
	}
	return s
}

// glob matches s against a pattern where '*' is any run of characters. It
// runs in time linear in len(pattern)*len(s) at worst: on a mismatch it
// backs up only to the last star, never further.
func glob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
