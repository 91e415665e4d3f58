package preauth

import (
	"net"
	"reflect"
	"sync"
)

// registry maps a connection accepted through a Listener to its entry.
// It is what lets the code that runs the handshake, often far from the
// listener (a sockmux link's actor), find the slot to mark and free
// without the connection being wrapped: the connection a Listener returns
// is the one it accepted, so a *net.TCPConn keeps its vectored writes.
// An entry leaves the registry when its slot is released, which its
// timers guarantee.
var registry sync.Map // net.Conn → *Entry

// Lookup returns the entry of c when a Listener admitted c and its slot
// is still held, nil otherwise. The handshake reads through its Conn and
// calls Done when it ends.
func Lookup(c net.Conn) *Entry {
	// The registry is keyed by the connection: one whose type cannot be a
	// map key (a struct value holding a map, say, which a library user may
	// hand to Client or Server) is none of a Listener's, and Load would
	// panic on it.
	if c == nil || !reflect.TypeOf(c).Comparable() {
		return nil
	}
	if e, ok := registry.Load(c); ok {
		return e.(*Entry)
	}
	return nil
}

// Listener is a listener whose Accept admits each connection to a gate:
// a connection the gate refuses is closed and Accept goes on to the next,
// so that only the inner listener's own errors reach the caller, as they
// came.
type Listener struct {
	net.Listener
	g *Gate
}

// Listen puts ln behind a new gate with the limits of cfg.
func Listen(ln net.Listener, cfg Config) *Listener {
	return &Listener{Listener: ln, g: New(cfg)}
}

// Accept returns the next connection the gate admits, unwrapped; Lookup
// finds its entry.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if _, err := l.g.admit(c, true); err != nil {
			// Refused (the gate logs it), or closing: in both cases
			// the inner listener says what comes next.
			c.Close()
			continue
		}
		return c, nil
	}
}

// Close closes the inner listener, then the gate.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.g.Close()
	return err
}

// Gate is the listener's gate, for its counters.
func (l *Listener) Gate() *Gate { return l.g }
