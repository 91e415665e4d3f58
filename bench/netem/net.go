package netem

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// MTU is the tun devices' MTU: an Ethernet path's, so that a loss is one
// segment of a full-sized TCP packet as on a real one.
const MTU = 1500

// MaxPaths is how many paths one Net can have (each a /24 of 10.77/16).
const MaxPaths = 200

// Net is a private network namespace with emulated paths: see the package
// doc. Its methods are safe for concurrent use.
type Net struct {
	ns      nsHandle
	shapers []*shaper
	once    sync.Once
}

// New makes a namespace with one path per element of paths (at least one,
// at most MaxPaths): path i leaves from Source(i) and reaches Far. Where
// the host cannot, the error is ErrUnavailable (wrapped with why).
func New(paths ...Path) (*Net, error) {
	if len(paths) == 0 || len(paths) > MaxPaths {
		return nil, fmt.Errorf("%w: %d paths, want 1 to %d", ErrBadPath, len(paths), MaxPaths)
	}
	for _, p := range paths {
		if err := p.check(); err != nil {
			return nil, err
		}
	}
	srcs := make([]net.IP, len(paths))
	for i := range srcs {
		srcs[i] = source(i)
	}
	ns, devs, err := makeNS(far, srcs)
	if err != nil {
		return nil, err
	}
	n := &Net{ns: ns}
	for i, d := range devs {
		n.shapers = append(n.shapers, newShaper(d, [4]byte(srcs[i].To4()), MTU, paths[i]))
	}
	return n, nil
}

// far is the address of the far side, on the namespace's lo.
var far = net.IPv4(10, 77, 0, 1).To4()

func source(i int) net.IP { return net.IPv4(10, 77, byte(i+1), 2).To4() }

// Far is the far side's address: what a server in the namespace listens
// on, and every path leads to.
func (n *Net) Far() net.IP { return far }

// Source is path i's source address: a socket bound to it sends across
// path i (and what is sent to it comes back across it).
func (n *Net) Source(i int) net.IP { return source(i) }

// Paths is how many paths n has.
func (n *Net) Paths() int { return len(n.shapers) }

func (n *Net) shaper(i int) (*shaper, error) {
	if i < 0 || i >= len(n.shapers) {
		return nil, fmt.Errorf("%w: no path %d (there are %d)", ErrBadPath, i, len(n.shapers))
	}
	return n.shapers[i], nil
}

// Set changes path i's figures from now on (what it holds keeps its due
// time).
func (n *Net) Set(i int, p Path) error {
	s, err := n.shaper(i)
	if err != nil {
		return err
	}
	if err := p.check(); err != nil {
		return err
	}
	s.set(p)
	return nil
}

// Cut black-holes path i: every packet sent across it either way is
// dropped, and so is what it held, until Restore. Connections across it
// see silence (no reset), as when a cable is pulled; a dial across it
// times out.
func (n *Net) Cut(i int) error {
	s, err := n.shaper(i)
	if err == nil {
		s.setCut(true)
	}
	return err
}

// Restore opens a path that Cut closed.
func (n *Net) Restore(i int) error {
	s, err := n.shaper(i)
	if err == nil {
		s.setCut(false)
	}
	return err
}

// Stats is what path i did so far.
func (n *Net) Stats(i int) (Stats, error) {
	s, err := n.shaper(i)
	if err != nil {
		return Stats{}, err
	}
	return s.snapshot(), nil
}

// Do runs f on a thread inside the namespace and returns its error. Every
// socket f makes (on its own goroutine: not on one it starts) belongs to
// the namespace, and keeps to it wherever it is used later.
func (n *Net) Do(f func() error) error { return n.ns.do(f) }

// Listen is net.Listen inside the namespace (on Far, typically).
func (n *Net) Listen(network, addr string) (ln net.Listener, err error) {
	err = n.Do(func() error {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket is net.ListenPacket inside the namespace: on Far for a
// server, on Source(i) for a client of path i.
func (n *Net) ListenPacket(network, addr string) (pc net.PacketConn, err error) {
	err = n.Do(func() error {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// Dial connects to addr inside the namespace from local address from
// (Source(i) to cross path i).
func (n *Net) Dial(ctx context.Context, network string, from net.IP, addr string) (c net.Conn, err error) {
	var local net.Addr
	switch network {
	case "udp", "udp4":
		local = &net.UDPAddr{IP: from}
	default:
		local = &net.TCPAddr{IP: from}
	}
	err = n.Do(func() error {
		d := net.Dialer{LocalAddr: local}
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Close stops every path (their packets are lost) and lets the namespace
// go once the last socket in it is closed.
func (n *Net) Close() error {
	n.once.Do(func() {
		for _, s := range n.shapers {
			s.close()
		}
		n.ns.close()
	})
	return nil
}
