package carriers

import (
	"context"
	"net"
)

// serialListener is the listener of a carrier that holds one peer at a
// time (a FIFO pair, a device): Accept opens it, and the next Accept waits
// until the connection it returned was closed before opening it again.
type serialListener struct {
	addr   net.Addr
	open   func(ctx context.Context) (*fileConn, error)
	ctx    context.Context
	cancel context.CancelFunc
	free   chan struct{} // holds a token while no accepted conn is open
}

func newSerialListener(addr net.Addr, open func(ctx context.Context) (*fileConn, error)) *serialListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &serialListener{addr: addr, open: open, ctx: ctx, cancel: cancel, free: make(chan struct{}, 1)}
	l.free <- struct{}{}
	return l
}

// Accept waits until the connection it returned before is closed, then
// opens the carrier again; Close stops a pending Accept with net.ErrClosed.
func (l *serialListener) Accept() (net.Conn, error) {
	select {
	case <-l.free:
	case <-l.ctx.Done():
		return nil, l.opError(net.ErrClosed)
	}
	if l.ctx.Err() != nil {
		l.free <- struct{}{}
		return nil, l.opError(net.ErrClosed)
	}
	c, err := l.open(l.ctx)
	if err != nil {
		l.free <- struct{}{}
		if l.ctx.Err() != nil {
			return nil, l.opError(net.ErrClosed)
		}
		return nil, l.opError(err)
	}
	inner := c.cleanup
	c.cleanup = func() error {
		var err error
		if inner != nil {
			err = inner()
		}
		l.free <- struct{}{}
		return err
	}
	return c, nil
}

// Close stops pending and later Accepts; a connection already accepted
// stays open.
func (l *serialListener) Close() error {
	if l.ctx.Err() != nil {
		return l.opError(net.ErrClosed)
	}
	l.cancel()
	return nil
}

// Addr names the carrier.
func (l *serialListener) Addr() net.Addr { return l.addr }

func (l *serialListener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: l.addr.Network(), Addr: l.addr, Err: err}
}
