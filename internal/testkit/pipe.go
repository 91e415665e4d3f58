package testkit

import (
	"context"
	"net"
	"sync"
)

// PipeCarrier is an in-memory carrier made of net.Pipe pairs: unbuffered,
// with no CloseWrite and no file descriptor, so it exercises the code paths
// a TCP carrier does not.
type PipeCarrier struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

// NewPipeCarrier returns a carrier whose Dial's other end is Accept's.
func NewPipeCarrier() *PipeCarrier {
	return &PipeCarrier{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Dial makes a pipe and hands its other end to Accept.
func (p *PipeCarrier) Dial(ctx context.Context) (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case p.conns <- b:
		return a, nil
	case <-p.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *PipeCarrier) String() string { return "pipe" }

// Accept returns the far end of the next Dial.
func (p *PipeCarrier) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and Dial.
func (p *PipeCarrier) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

// Addr names the carrier.
func (p *PipeCarrier) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
