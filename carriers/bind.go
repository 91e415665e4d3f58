package carriers

// Bonding uplinks: the carriers of one link dialled from different local
// addresses or interfaces (two ISPs, Wi-Fi and LTE, two NICs), so their
// paths really differ and the Scheduler's striping adds them up.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
)

// ErrBadBind is a --bind-carrier this host does not have: an address no
// interface holds, or an interface that does not exist.
var ErrBadBind = errors.New("bad carrier bind")

// LocalBind is where a carrier's TCP connection leaves from: a local IP
// address, or a network interface by name.
type LocalBind struct {
	IP    net.IP
	Iface string
}

func (b LocalBind) String() string {
	if b.Iface != "" {
		return b.Iface
	}
	return b.IP.String()
}

// ParseLocalBind reads ADDR (an IP of this host) or IFACE (an interface's
// name) and checks the host has it: an address is tried by binding a
// socket to it, an interface by looking it up.
func ParseLocalBind(s string) (LocalBind, error) {
	if ip := net.ParseIP(s); ip != nil {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			return LocalBind{}, fmt.Errorf("%w %q: this host has no such address: %v", ErrBadBind, s, err)
		}
		pc.Close()
		return LocalBind{IP: ip}, nil
	}
	if _, err := net.InterfaceByName(s); err != nil {
		return LocalBind{}, fmt.Errorf("%w %q: neither an IP address nor an interface of this host: %v", ErrBadBind, s, err)
	}
	return LocalBind{Iface: s}, nil
}

// WithLocalBinds makes every TCP carrier (tcp, tls, ws, wss, and the
// connection to a proxy) leave from one of binds: each dial takes the one
// with the fewest live carriers, so N carriers spread evenly and a carrier
// lost on one path is dialled again on that path.
func WithLocalBinds(binds []LocalBind) Option {
	return func(o *options) {
		if len(binds) > 0 {
			o.binds = &bindSet{binds: binds, live: make([]int, len(binds))}
		}
	}
}

// bindSet picks the local bind of each dial and counts the live
// connections each has.
type bindSet struct {
	mu    sync.Mutex
	binds []LocalBind
	live  []int
	next  int // where ties start, so equal counts rotate
}

// take picks the bind with the fewest live connections and counts one
// more on it; the returned func gives it back (once).
func (s *bindSet) take() (LocalBind, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	best := -1
	for k := range s.binds {
		i := (s.next + k) % len(s.binds)
		if best < 0 || s.live[i] < s.live[best] {
			best = i
		}
	}
	s.next = (best + 1) % len(s.binds)
	s.live[best]++
	var once sync.Once
	return s.binds[best], func() {
		once.Do(func() {
			s.mu.Lock()
			s.live[best]--
			s.mu.Unlock()
		})
	}
}

// dial connects to addr from the next bind; the connection gives its
// bind back when closed.
func (s *bindSet) dial(ctx context.Context, addr string) (net.Conn, error) {
	b, done := s.take()
	nd := net.Dialer{Timeout: DialTimeout, KeepAlive: tcpKeepAlive}
	if b.IP != nil {
		nd.LocalAddr = &net.TCPAddr{IP: b.IP}
	}
	if b.Iface != "" {
		nd.Control = func(_, _ string, c syscall.RawConn) error { return bindToDevice(c, b.Iface) }
	}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		done()
		return nil, fmt.Errorf("from %s: %w", b, err)
	}
	tune(c)
	return &boundConn{TCPConn: c.(*net.TCPConn), done: done}, nil
}

// boundConn is a carrier connection that gives its bind back on Close. It
// stays a *net.TCPConn underneath, for the writer's vectored writes.
type boundConn struct {
	*net.TCPConn
	done func()
}

func (c *boundConn) Close() error {
	c.done()
	return c.TCPConn.Close()
}

// WriteBuffers writes bufs in one writev, as the carrier writer does for a
// plain *net.TCPConn (which this wraps, and which its type switch would
// not see).
func (c *boundConn) WriteBuffers(bufs [][]byte) (int, error) {
	b := net.Buffers(bufs)
	n, err := b.WriteTo(c.TCPConn)
	return int(n), err
}
