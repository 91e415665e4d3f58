package carriers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrBadAddress is a carrier address that does not parse, names a scheme
// this build does not have, or names a kind that cannot be used that way
// (listening on exec:).
var ErrBadAddress = errors.New("bad carrier address")

// Dialer makes carrier connections to one peer; a link redials through it.
type Dialer interface {
	// Dial makes one carrier connection.
	Dial(ctx context.Context) (net.Conn, error)
	// String names the peer, for logs.
	String() string
}

// DialTimeout bounds one dial of a carrier, and one TLS handshake on either
// side.
const DialTimeout = 10 * time.Second

// NewDialer returns a Dialer for ADDR, one of
//
//	host:port, tcp://host:port   TCP
//	tls://host:port              TLS 1.3 over TCP (needs WithTLS with a CAFile or a Fingerprint)
//	fifo:READ_PATH,WRITE_PATH    a pair of named pipes
//	comm:PATH                    a unix socket or a character device (tty, serial line)
//	ws://host[:port]/path        a WebSocket (binary messages) over TCP, port 80 by default
//	wss://host[:port]/path       a WebSocket over TLS 1.3 (WithTLS as tls://, or the system's roots), port 443 by default
//	quic://host:port             a QUIC stream over UDP, TLS 1.3 inside QUIC (WithTLS as tls://)
//	exec:COMMAND                 the stdin and stdout of a command run with sh -c
//
// tcp, tls, ws and wss dial through the proxy of WithProxy or
// WithProxyFromEnvironment, if any; quic, on UDP, refuses WithProxy and
// ignores the environment's. An address that does not parse is
// ErrBadAddress; a TLS configuration that cannot work is ErrTLSConfig; a
// proxy URL that does not parse is ErrBadProxy.
func NewDialer(addr string, opts ...Option) (Dialer, error) {
	a, err := parse(addr)
	if err != nil {
		return nil, err
	}
	o := newOptions(opts)
	if a.scheme == "quic" { // UDP: no proxy of the environment applies
		return newQUICDialer(a, o)
	}
	nd := netDialer{binds: o.binds}
	if a.hostport != "" {
		if nd.proxy, err = o.proxy.forAddr(a.scheme, a.hostport); err != nil {
			return nil, fmt.Errorf("dialling %s: %w", addr, err)
		}
	}
	switch a.scheme {
	case "tcp":
		return &tcpDialer{addr: a.hostport, net: nd}, nil
	case "tls":
		return newTLSDialer(a.hostport, o, nd)
	case "ws", "wss":
		return newWSDialer(a, o, nd)
	case "fifo":
		return &fifoDialer{rpath: a.rpath, wpath: a.wpath}, nil
	case "comm":
		return &commDialer{path: a.path}, nil
	case "exec":
		return &execDialer{command: a.command, log: o.log}, nil
	}
	return nil, fmt.Errorf("%w %q: %s has no dialer (the stdio command serves it)", ErrBadAddress, addr, a.scheme)
}

// Listen listens for carrier connections on ADDR: the addresses of
// NewDialer but exec:, which is dial-only. A fifo: or comm: device listener
// serves one connection at a time: Accept opens the pipes or the device
// again only once the connection it returned before has been closed.
func Listen(addr string, opts ...Option) (net.Listener, error) {
	a, err := parse(addr)
	if err != nil {
		return nil, err
	}
	o := newOptions(opts)
	switch a.scheme {
	case "tcp":
		ln, err := net.Listen("tcp", a.hostport)
		if err != nil {
			return nil, err
		}
		return &tcpListener{ln.(*net.TCPListener)}, nil
	case "tls":
		return listenTLS(a.hostport, o)
	case "ws", "wss":
		return listenWS(a, o)
	case "quic":
		return listenQUIC(a, o)
	case "fifo":
		return listenFifo(a.rpath, a.wpath)
	case "comm":
		return listenComm(a.path)
	case "exec":
		return nil, fmt.Errorf("%w %q: exec is dial-only (run the far side as 'sockmux stdio')", ErrBadAddress, addr)
	}
	return nil, fmt.Errorf("%w %q: %s has no listener (the stdio command serves it)", ErrBadAddress, addr, a.scheme)
}

// IsLoopback tells whether ADDR only reaches this machine: a tcp, tls, ws,
// wss or quic address whose host is "localhost" or a loopback IP, or any fifo:, comm:,
// exec: or stdio address. An empty host, 0.0.0.0, :: and every other name
// or IP are not loopback (names other than localhost are not resolved).
func IsLoopback(addr string) (bool, error) {
	a, err := parse(addr)
	if err != nil {
		return false, err
	}
	if a.hostport == "" {
		return true, nil
	}
	host, _, _ := net.SplitHostPort(a.hostport)
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // fe80::1%eth0
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// TCPAddress is the host:port a carrier address of a kind that runs on
// TCP (tcp, tls, ws, wss) listens on or dials, "" for the other kinds and
// for what does not parse.
func TCPAddress(addr string) string {
	a, err := parse(addr)
	if err != nil || a.scheme == "quic" {
		return ""
	}
	return a.hostport
}

// address is a parsed carrier address.
type address struct {
	scheme       string // tcp, tls, ws, wss, quic, fifo, comm, exec, stdio
	hostport     string // tcp, tls, ws, wss, quic
	wsPath       string // ws, wss: the path, "/" at least, unescaped
	wsURI        string // ws, wss: the path as sent, escaped
	rpath, wpath string // fifo
	path         string // comm
	command      string // exec
}

// parse splits ADDR by scheme. The path schemes (fifo:, comm:, exec:,
// stdio) are recognised by prefix before host:port, so a host named like
// one of them must be written tcp://fifo:80.
func parse(addr string) (address, error) {
	bad := func(format string, args ...any) (address, error) {
		return address{}, fmt.Errorf("%w %q: %s", ErrBadAddress, addr, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.HasPrefix(addr, "fifo:"):
		parts := strings.Split(addr[len("fifo:"):], ",")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return bad("want fifo:READ_PATH,WRITE_PATH")
		}
		if parts[0] == parts[1] {
			return bad("the read and the write pipe are the same file")
		}
		return address{scheme: "fifo", rpath: parts[0], wpath: parts[1]}, nil
	case strings.HasPrefix(addr, "comm:"):
		p := addr[len("comm:"):]
		if p == "" {
			return bad("want comm:PATH")
		}
		return address{scheme: "comm", path: p}, nil
	case strings.HasPrefix(addr, "exec:"):
		c := strings.TrimSpace(addr[len("exec:"):])
		if c == "" {
			return bad("want exec:COMMAND")
		}
		return address{scheme: "exec", command: c}, nil
	case addr == "stdio" || addr == "stdio:":
		return address{scheme: "stdio"}, nil
	}
	scheme, hostport := "tcp", addr
	if i := strings.Index(addr, "://"); i >= 0 {
		scheme, hostport = addr[:i], addr[i+3:]
	}
	var wsPath, wsURI string
	switch scheme {
	case "tcp", "tls", "quic":
	case "ws", "wss":
		u, err := url.Parse(addr)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return bad("%v", err)
		}
		if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return bad("want %s://host:port/path (no user, query or fragment)", scheme)
		}
		hostport, wsPath, wsURI = u.Host, u.Path, u.EscapedPath()
		if u.Port() == "" && !strings.HasSuffix(u.Host, ":") && u.Hostname() != "" {
			hostport = net.JoinHostPort(u.Hostname(), map[string]string{"ws": "80", "wss": "443"}[scheme])
		}
		if wsPath == "" {
			wsPath, wsURI = "/", "/"
		}
	default:
		return bad("unknown scheme %q (want tcp, tls, ws, wss, quic, fifo, comm or exec)", scheme)
	}
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return bad("%v", err)
	}
	if port == "" {
		return bad("no port")
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return bad("port %d out of range (0 to 65535)", n)
		}
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		return bad("port %q is neither a number nor a service this host knows", port)
	}
	return address{scheme: scheme, hostport: hostport, wsPath: wsPath, wsURI: wsURI}, nil
}

type tcpDialer struct {
	addr string
	net  netDialer
}

func (d *tcpDialer) Dial(ctx context.Context) (net.Conn, error) {
	return d.net.dial(ctx, d.addr)
}

func (d *tcpDialer) String() string { return "tcp://" + d.addr + d.net.via() }

func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: DialTimeout, KeepAlive: tcpKeepAlive}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tune(c)
	return c, nil
}

type tcpListener struct{ *net.TCPListener }

func (l *tcpListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	if err != nil {
		return nil, err
	}
	tune(c)
	return c, nil
}

// tcpKeepAlive is the kernel keepalive of carrier connections; sockmux's
// own PINGs find a dead peer sooner.
const tcpKeepAlive = 30 * time.Second

// tune sets TCP_NODELAY: the carrier writer already batches frames into one
// vectored write, so Nagle would only add delay to control frames.
func tune(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
}
