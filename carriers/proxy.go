package carriers

// Dialling a carrier's TCP connection through a proxy: an HTTP proxy's
// CONNECT (with Basic authentication) or a SOCKS5 proxy (RFC 1928, with
// the username/password method of RFC 1929), and which proxy the
// environment names for an address, read as curl reads it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Errors of a dial through a proxy, for errors.Is.
var (
	// ErrBadProxy is a proxy URL that does not parse or names a kind of
	// proxy this build does not speak.
	ErrBadProxy = errors.New("bad proxy")
	// ErrProxyRefused is a proxy that would not connect to the carrier's
	// address: the message has its status line (HTTP) or its reply
	// (SOCKS5).
	ErrProxyRefused = errors.New("proxy refused the connection")
	// ErrProxyForbidden is a refusal dialling again will not change: an
	// HTTP proxy's 4xx (its rules forbid the address: tinyproxy's 403 for
	// a port it does not connect to), a SOCKS5 proxy's "not allowed by
	// ruleset" or "not supported". It comes with ErrProxyRefused; a 5xx or
	// a SOCKS5 "connection refused" (the target is down) comes without it.
	ErrProxyForbidden = errors.New("forbidden by the proxy")
	// ErrProxyAuth is a proxy that wants credentials, or refused the ones
	// given: dialling again will not change its mind.
	ErrProxyAuth = errors.New("proxy authentication failed")
)

// DefaultProxyPort is the port of a proxy URL that names none, as in curl.
const DefaultProxyPort = "1080"

// Proxy is a proxy that carrier dials go through.
type Proxy struct {
	// Scheme is "http" (CONNECT), "socks5" (this side resolves the
	// carrier's host name) or "socks5h" (the proxy resolves it).
	Scheme string
	// Addr is the proxy's host:port.
	Addr string
	// User and Password, when User is set, are given to the proxy: Basic
	// authentication on HTTP, the username/password method on SOCKS5.
	User, Password string
}

// ParseProxy parses http://[user:pass@]host[:port],
// socks5://[user:pass@]host[:port] or socks5h://... (user and password
// percent-encoded). As in curl, a URL without a scheme is an HTTP proxy and
// one without a port is on 1080. What does not parse is ErrBadProxy.
func ParseProxy(s string) (*Proxy, error) {
	bad := func(format string, args ...any) (*Proxy, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrBadProxy, redactURL(s), fmt.Sprintf(format, args...))
	}
	raw := strings.TrimSpace(s)
	if raw == "" {
		return bad("empty")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password and all
		}
		return bad("%v", err)
	}
	p := &Proxy{Scheme: strings.ToLower(u.Scheme)}
	switch p.Scheme {
	case "http", "socks5", "socks5h":
	default:
		return bad("unsupported proxy scheme %q (want http, socks5 or socks5h)", u.Scheme)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return bad("a proxy URL is scheme://[user:pass@]host:port, with no path")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return bad("no host")
	}
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return bad("empty port")
		}
		port = DefaultProxyPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad("bad port %q", port)
	}
	p.Addr = net.JoinHostPort(host, port)
	if u.User != nil {
		p.User = u.User.Username()
		p.Password, _ = u.User.Password()
		if p.User == "" {
			return bad("a password without a user name")
		}
		if p.Scheme != "http" && (len(p.User) > 255 || len(p.Password) > 255) {
			return bad("SOCKS5 user names and passwords are at most 255 bytes")
		}
	}
	return p, nil
}

// String is the proxy's URL with the password left out.
func (p *Proxy) String() string {
	if p.User == "" {
		return p.Scheme + "://" + p.Addr
	}
	return p.Scheme + "://" + url.User(p.User).String() + ":***@" + p.Addr
}

// redactURL hides the password of a URL-ish string for messages.
func redactURL(s string) string {
	i := strings.Index(s, "://")
	rest := s
	if i >= 0 {
		rest = s[i+3:]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return s
	}
	cred := rest[:at]
	if c := strings.IndexByte(cred, ':'); c >= 0 {
		cred = cred[:c] + ":***"
	}
	if i >= 0 {
		return s[:i+3] + cred + rest[at:]
	}
	return cred + rest[at:]
}

// netDialer makes the TCP connection a carrier runs on: directly, or
// through a proxy.
type netDialer struct {
	proxy *Proxy   // nil: direct
	binds *bindSet // nil: the system's choice of source
}

// dial connects to hostport, within ctx.
func (n netDialer) dial(ctx context.Context, hostport string) (net.Conn, error) {
	switch {
	case n.proxy != nil:
		return n.proxy.dial(ctx, hostport, n.binds)
	case n.binds != nil:
		return n.binds.dial(ctx, hostport)
	}
	return dialTCP(ctx, hostport)
}

// via is what a dialer's String adds: " via PROXY", or nothing.
func (n netDialer) via() string {
	if n.proxy == nil {
		return ""
	}
	return " via " + n.proxy.String()
}

// Dial connects to target (host:port) through the proxy, within ctx and
// DialTimeout. The connection returned is the TCP connection to the proxy
// itself, past the proxy's answer: nothing the carrier's peer sent after
// it has been read.
func (p *Proxy) Dial(ctx context.Context, target string) (net.Conn, error) {
	return p.dial(ctx, target, nil)
}

// dial is Dial with the connection to the proxy leaving from one of binds
// (nil: the system's choice).
func (p *Proxy) dial(ctx context.Context, target string, binds *bindSet) (net.Conn, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	var c net.Conn
	if binds != nil {
		c, err = binds.dial(ctx, p.Addr)
	} else {
		c, err = dialTCP(ctx, p.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", p, err)
	}
	// The handshake is bounded by ctx: its end, or its cancellation,
	// fails what is blocked.
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	switch p.Scheme {
	case "http":
		err = p.connectHTTP(c, target)
	default:
		err = p.connectSOCKS5(ctx, c, host, port)
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		if ctx.Err() != nil && !errors.Is(err, ErrProxyRefused) && !errors.Is(err, ErrProxyAuth) {
			err = fmt.Errorf("proxy %s: %w: %w", p, ctx.Err(), err)
		}
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// maxProxyHead bounds an HTTP proxy's answer to CONNECT.
const maxProxyHead = 16 << 10

// connectHTTP asks an HTTP proxy for a tunnel to target.
func (p *Proxy) connectHTTP(c net.Conn, target string) error {
	var req bytes.Buffer
	fmt.Fprintf(&req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if p.User != "" {
		cred := base64.StdEncoding.EncodeToString([]byte(p.User + ":" + p.Password))
		fmt.Fprintf(&req, "Proxy-Authorization: Basic %s\r\n", cred)
	}
	req.WriteString("\r\n")
	if _, err := c.Write(req.Bytes()); err != nil {
		return fmt.Errorf("proxy %s: sending CONNECT: %w", p, err)
	}
	head, err := readHead(c, maxProxyHead)
	if err != nil {
		return fmt.Errorf("proxy %s: reading its answer to CONNECT %s: %w", p, target, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil {
		return fmt.Errorf("proxy %s: bad answer to CONNECT %s: %w", p, target, err)
	}
	status := strings.TrimSpace(string(head[:bytes.IndexByte(head, '\n')]))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusProxyAuthRequired && p.User == "":
		return fmt.Errorf("%w: proxy %s wants credentials (give them as http://user:pass@host:port): it answered %q to CONNECT %s",
			ErrProxyAuth, p, status, target)
	case resp.StatusCode == http.StatusProxyAuthRequired, resp.StatusCode == http.StatusUnauthorized && p.User != "":
		// tinyproxy answers wrong credentials with a 401.
		return fmt.Errorf("%w: proxy %s refused the credentials of %q: it answered %q to CONNECT %s",
			ErrProxyAuth, p, p.User, status, target)
	}
	if resp.StatusCode/100 == 4 {
		return fmt.Errorf("%w (%w): proxy %s answered %q to CONNECT %s", ErrProxyRefused, ErrProxyForbidden, p, status, target)
	}
	return fmt.Errorf("%w: proxy %s answered %q to CONNECT %s", ErrProxyRefused, p, status, target)
}

// readHead reads an HTTP head up to its blank line, one byte at a time:
// what follows it is the tunnel's and must stay unread.
func readHead(r io.Reader, limit int) ([]byte, error) {
	var head []byte
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return head, err
		}
		head = append(head, b[0])
		if bytes.HasSuffix(head, []byte("\r\n\r\n")) || bytes.HasSuffix(head, []byte("\n\n")) {
			return head, nil
		}
		if len(head) >= limit {
			return head, fmt.Errorf("no end of the header within %d bytes", limit)
		}
	}
}

// SOCKS5 (RFC 1928) and its username/password method (RFC 1929).
const (
	socksVersion      = 5
	socksNoAuth       = 0
	socksUserPass     = 2
	socksNoAcceptable = 0xff
	socksConnect      = 1
	socksIPv4         = 1
	socksDomain       = 3
	socksIPv6         = 4
)

// socksReplies are RFC 1928's reply codes.
var socksReplies = map[byte]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

// connectSOCKS5 asks a SOCKS5 proxy for a connection to host:port.
func (p *Proxy) connectSOCKS5(ctx context.Context, c net.Conn, host, port string) error {
	target := net.JoinHostPort(host, port)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("proxy %s: %s", p, fmt.Sprintf(format, args...))
	}
	portNum, err := strconv.Atoi(port)
	if err != nil || portNum < 0 || portNum > 65535 {
		return fail("bad port %q", port)
	}
	// The address first: a name this side cannot resolve fails before
	// anything is sent.
	var addr []byte
	if ip, err := netip.ParseAddr(host); err == nil {
		addr = socksAddr(ip.Unmap())
	} else if p.Scheme == "socks5" { // curl's socks5: resolved here
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return fail("resolving %s for the proxy: %v", host, err)
		}
		addr = socksAddr(ips[0].Unmap())
	} else {
		if len(host) > 255 {
			return fail("host name %q is longer than SOCKS5 allows", host)
		}
		addr = append([]byte{socksDomain, byte(len(host))}, host...)
	}

	methods := []byte{socksNoAuth}
	if p.User != "" {
		methods = []byte{socksUserPass} // offered credentials are always used
	}
	if _, err := c.Write(append([]byte{socksVersion, byte(len(methods))}, methods...)); err != nil {
		return fail("sending the greeting: %v", err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil {
		return fail("reading its method selection: %v", err)
	}
	if sel[0] != socksVersion {
		return fail("not a SOCKS5 proxy (it answered version %d)", sel[0])
	}
	switch {
	case sel[1] == socksNoAcceptable && p.User == "":
		return fmt.Errorf("%w: proxy %s wants credentials (give them as %s://user:pass@host:port)", ErrProxyAuth, p, p.Scheme)
	case sel[1] == socksNoAcceptable:
		return fmt.Errorf("%w: proxy %s accepts no username/password authentication", ErrProxyAuth, p)
	case sel[1] == socksUserPass && p.User != "":
		auth := []byte{1, byte(len(p.User))}
		auth = append(auth, p.User...)
		auth = append(auth, byte(len(p.Password)))
		auth = append(auth, p.Password...)
		if _, err := c.Write(auth); err != nil {
			return fail("sending the credentials: %v", err)
		}
		var st [2]byte
		if _, err := io.ReadFull(c, st[:]); err != nil {
			return fail("reading its answer to the credentials: %v", err)
		}
		if st[1] != 0 {
			return fmt.Errorf("%w: proxy %s refused the credentials of %q (status %d)", ErrProxyAuth, p, p.User, st[1])
		}
	case sel[1] != socksNoAuth || p.User != "":
		return fail("it chose authentication method %d, which was not offered", sel[1])
	}

	req := append([]byte{socksVersion, socksConnect, 0}, addr...)
	req = append(req, byte(portNum>>8), byte(portNum))
	if _, err := c.Write(req); err != nil {
		return fail("sending CONNECT: %v", err)
	}
	var rep [4]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return fail("reading its reply to CONNECT %s: %v", target, err)
	}
	if rep[0] != socksVersion {
		return fail("bad reply version %d to CONNECT %s", rep[0], target)
	}
	if rep[1] != 0 {
		why := socksReplies[rep[1]]
		if why == "" {
			why = "unknown reply"
		}
		if rep[1] == 2 || rep[1] == 7 || rep[1] == 8 {
			return fmt.Errorf("%w (%w): proxy %s answered reply %d (%s) to CONNECT %s", ErrProxyRefused, ErrProxyForbidden, p, rep[1], why, target)
		}
		return fmt.Errorf("%w: proxy %s answered reply %d (%s) to CONNECT %s", ErrProxyRefused, p, rep[1], why, target)
	}
	// The bound address, which nothing here needs, then the tunnel.
	var skip int
	switch rep[3] {
	case socksIPv4:
		skip = 4
	case socksIPv6:
		skip = 16
	case socksDomain:
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return fail("reading its reply to CONNECT %s: %v", target, err)
		}
		skip = int(n[0])
	default:
		return fail("bad address type %d in its reply to CONNECT %s", rep[3], target)
	}
	if _, err := io.ReadFull(c, make([]byte, skip+2)); err != nil {
		return fail("reading its reply to CONNECT %s: %v", target, err)
	}
	return nil
}

func socksAddr(ip netip.Addr) []byte {
	if ip.Is4() {
		a := ip.As4()
		return append([]byte{socksIPv4}, a[:]...)
	}
	a := ip.As16()
	return append([]byte{socksIPv6}, a[:]...)
}

// proxyChoice is how a dialer picks its proxy: given (Proxy, or none), or
// from the environment.
type proxyChoice struct {
	fixed  *Proxy
	env    func(string) (string, bool) // os.LookupEnv; nil: the environment is not read
	chosen bool                        // WithProxy or WithProxyFromEnvironment was given
}

// WithProxy sends every dial of a tcp://, tls://, ws:// or wss://
// carrier through p, but to the hosts the environment's no_proxy or
// NO_PROXY lists (as curl does with its --proxy); nil dials directly and
// reads no environment. Other kinds ignore it. The last of WithProxy and
// WithProxyFromEnvironment wins; without either, carriers dial directly.
func WithProxy(p *Proxy) Option {
	return func(o *options) { o.proxy = proxyChoice{fixed: p, env: envIf(p != nil), chosen: true} }
}

// lookupEnv reads the environment.
var lookupEnv = os.LookupEnv

// envIf is the environment no_proxy is read from: only with a proxy.
func envIf(on bool) func(string) (string, bool) {
	if !on {
		return nil
	}
	return lookupEnv
}

// WithProxyFromEnvironment picks each carrier's proxy from the environment
// (lookup is os.LookupEnv, or a stand-in for tests) as curl does for its
// URLs: for ws://, ws_proxy, WS_PROXY, then http_proxy (lower case only);
// for wss://, wss_proxy, WSS_PROXY, then https_proxy, HTTPS_PROXY; for
// tcp:// and tls://, whose bytes are as opaque to a proxy as https's,
// https_proxy, HTTPS_PROXY; then for all of them all_proxy, ALL_PROXY. The
// first that is set decides (set and empty: no proxy). A host that
// no_proxy (or, without it, NO_PROXY) lists is dialled directly: "*" is
// every host; otherwise a comma-separated list of names, each matching
// itself and its subdomains (a leading dot is ignored), and of IP
// addresses or CIDR prefixes, which match IP hosts only.
func WithProxyFromEnvironment(lookup func(string) (string, bool)) Option {
	return func(o *options) { o.proxy = proxyChoice{env: lookup, chosen: true} }
}

// forAddr is the proxy for a carrier of scheme at hostport, nil for a
// direct dial. A proxy variable that does not parse is ErrBadProxy, named.
func (pc proxyChoice) forAddr(scheme, hostport string) (*Proxy, error) {
	if !pc.chosen {
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(hostport)
	if pc.fixed != nil {
		if pc.env != nil && noProxy(pc.env, host) {
			return nil, nil
		}
		return pc.fixed, nil
	}
	if pc.env == nil {
		return nil, nil
	}
	name, val, ok := proxyVariable(pc.env, scheme)
	if !ok || strings.TrimSpace(val) == "" || noProxy(pc.env, host) {
		return nil, nil
	}
	p, err := ParseProxy(val)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// proxyVariable is the first proxy variable set for scheme, in curl's
// order.
func proxyVariable(lookup func(string) (string, bool), scheme string) (name, val string, ok bool) {
	var names []string
	switch scheme {
	case "ws":
		names = []string{"ws_proxy", "WS_PROXY", "http_proxy"} // never HTTP_PROXY: a CGI's request can set it
	case "wss":
		names = []string{"wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY"}
	default:
		names = []string{"https_proxy", "HTTPS_PROXY"}
	}
	for _, n := range append(names, "all_proxy", "ALL_PROXY") {
		if v, ok := lookup(n); ok {
			return n, v, true
		}
	}
	return "", "", false
}

// noProxy tells whether the environment's no_proxy (or NO_PROXY) exempts
// host from proxies, as curl's Curl_check_noproxy does.
func noProxy(lookup func(string) (string, bool), host string) bool {
	list, ok := lookup("no_proxy")
	if !ok {
		list, _ = lookup("NO_PROXY")
	}
	return noProxyMatch(list, host)
}

func noProxyMatch(list, host string) bool {
	list = strings.TrimSpace(list)
	if list == "" || host == "" {
		return false
	}
	if list == "*" {
		return true
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if i := strings.IndexByte(host, '%'); i >= 0 { // fe80::1%eth0
		host = host[:i]
	}
	ip, ipErr := netip.ParseAddr(host)
	for _, tok := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if ipErr == nil {
			tok = strings.Trim(tok, "[]")
			if pre, err := netip.ParsePrefix(tok); err == nil {
				if pre.Contains(ip.Unmap()) || pre.Contains(ip) {
					return true
				}
			} else if a, err := netip.ParseAddr(tok); err == nil && a.Unmap() == ip.Unmap() {
				return true
			}
			continue
		}
		tok = strings.TrimPrefix(strings.TrimSuffix(tok, "."), ".")
		if tok == "" {
			continue
		}
		if strings.EqualFold(tok, host) {
			return true
		}
		if len(tok) < len(host) && host[len(host)-len(tok)-1] == '.' && strings.EqualFold(tok, host[len(host)-len(tok):]) {
			return true
		}
	}
	return false
}
