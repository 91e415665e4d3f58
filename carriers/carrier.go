package carriers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ErrBadAddress is a carrier address that does not parse or names a scheme
// this build does not have.
var ErrBadAddress = errors.New("bad carrier address")

// Dialer makes carrier connections to one peer; a link redials through it.
type Dialer interface {
	// Dial makes one carrier connection.
	Dial(ctx context.Context) (net.Conn, error)
	// String names the peer, for logs.
	String() string
}

// DialTimeout bounds one dial of a carrier.
const DialTimeout = 10 * time.Second

// NewDialer returns a Dialer for ADDR: "tcp://host:port" or "host:port".
func NewDialer(addr string) (Dialer, error) {
	scheme, hostport, err := split(addr)
	if err != nil {
		return nil, err
	}
	switch scheme {
	case "tcp":
		return &tcpDialer{addr: hostport}, nil
	}
	return nil, fmt.Errorf("%w %q: unknown scheme %q", ErrBadAddress, addr, scheme)
}

// Listen listens for carrier connections on ADDR: "tcp://host:port" or
// "host:port".
func Listen(addr string) (net.Listener, error) {
	scheme, hostport, err := split(addr)
	if err != nil {
		return nil, err
	}
	switch scheme {
	case "tcp":
		ln, err := net.Listen("tcp", hostport)
		if err != nil {
			return nil, err
		}
		return &tcpListener{ln.(*net.TCPListener)}, nil
	}
	return nil, fmt.Errorf("%w %q: unknown scheme %q", ErrBadAddress, addr, scheme)
}

func split(addr string) (scheme, hostport string, err error) {
	scheme, hostport = "tcp", addr
	if i := strings.Index(addr, "://"); i >= 0 {
		scheme, hostport = addr[:i], addr[i+3:]
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return "", "", fmt.Errorf("%w %q: %v", ErrBadAddress, addr, err)
	}
	return scheme, hostport, nil
}

type tcpDialer struct{ addr string }

func (d *tcpDialer) Dial(ctx context.Context) (net.Conn, error) {
	nd := net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	c, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	tune(c)
	return c, nil
}

func (d *tcpDialer) String() string { return "tcp://" + d.addr }

type tcpListener struct{ *net.TCPListener }

func (l *tcpListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	if err != nil {
		return nil, err
	}
	tune(c)
	return c, nil
}

// tune sets TCP_NODELAY: the carrier writer already batches frames into one
// vectored write, so Nagle would only add delay to control frames.
func tune(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
}
