package actors

import (
	"net"

	"github.com/sockmux/sockmux/internal/acceptloop"
)

// acceptLoop accepts on ln, on a goroutine the node waits for, handing
// each connection to handle, until ln is closed, stop is closed (the
// owning actor is stopping; nil for none) or the node closes. Every
// other accept error is ridden out with backoff (internal/acceptloop):
// a flood that exhausts the descriptors (EMFILE) must not leave the
// listener deaf once the flood has gone. what names the listener in the
// log ("links", "forward", ...); the first line of a burst goes through
// the node's rate limiter, since a peer can cause bursts at will: one
// cause per listener the operator asked for, and one for all the
// listeners peers asked for (their -R), however many they hold.
func (e *env) acceptLoop(ln net.Listener, stop <-chan struct{}, what string, handle func(net.Conn)) {
	o := acceptloop.Options{
		Log:   e.log,
		Limit: e.limit,
		Attrs: []any{"accepting", what, "listen", ln.Addr().String()},
		Stop:  stop,
		Done:  e.done,
	}
	if what == reverseForward {
		o.Key = "accept failing: " + reverseForward
	}
	e.goroutine(func() { acceptloop.Run(ln, o, handle) })
}

// reverseForward is what a peer's -R listener is called in the log.
const reverseForward = "reverse forward"

// listenTCP listens on addr for a forward's connections (-L, -D, a peer's
// -R, a pool), with raw accepts where the OS has them (rawAccepting).
// Whoever holds the listener closes it, and must close this one: with raw
// accepts it wraps a second descriptor of the socket, which keeps it
// listening until both are closed.
func listenTCP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return rawAccepting(ln), nil
}
