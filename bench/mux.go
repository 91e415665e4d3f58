package bench

import (
	"io"
	"net"
	"sync"
)

// muxStream is one stream of a multiplexer library, as the tunnels use it:
// a byte pipe with a half-close.
type muxStream interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// muxSession is one end of a multiplexer library's session.
type muxSession interface {
	Open() (muxStream, error)
	Accept() (muxStream, error)
	Close() error
}

// A tunnel on a multiplexer library is built the way its users build one:
// two peers share one carrier TCP connection; the near peer's local
// listener opens a stream for each connection it accepts; the far peer
// accepts each stream and dials the fixed target; io.Copy runs both ways,
// passing on half-closes. It is the shape of the sockmux tunnel, with the
// library in place of the link.

// muxPeer is one peer of such a tunnel: the sockets and streams it joins,
// closed all at once by Close.
type muxPeer struct {
	ln      net.Listener // far: the carrier's; near: the forward's
	session muxSession
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[io.Closer]struct{}
	closed  bool
}

func newMuxPeer() *muxPeer { return &muxPeer{conns: map[io.Closer]struct{}{}} }

func (p *muxPeer) Addr() string { return p.ln.Addr().String() }

// muxFar listens for the carrier on loopback; once it is accepted, it
// starts the server end of the session on it and dials target for every
// stream the near peer opens.
func muxFar(target string, server func(net.Conn) (muxSession, error)) (Tunnel, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := newMuxPeer()
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c, err := ln.Accept()
		ln.Close() // one carrier
		if err != nil {
			return
		}
		s, err := server(c)
		if err != nil {
			c.Close()
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			s.Close()
			return
		}
		p.session = s
		p.mu.Unlock()
		for {
			st, err := s.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				d, err := net.Dial("tcp", target)
				if err != nil {
					st.Close()
					return
				}
				p.join(d.(*net.TCPConn), st)
			}()
		}
	}()
	return p, nil
}

// muxNear dials the carrier, starts the client end of the session on it
// and opens a stream for every connection to its forward listener.
func muxNear(carrier string, client func(net.Conn) (muxSession, error)) (Tunnel, error) {
	c, err := net.Dial("tcp", carrier)
	if err != nil {
		return nil, err
	}
	s, err := client(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	p := newMuxPeer()
	p.ln, p.session = ln, s
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				st, err := s.Open()
				if err != nil {
					c.Close()
					return
				}
				p.join(c.(*net.TCPConn), st)
			}()
		}
	}()
	return p, nil
}

// track remembers cs for Close; false once the peer is closing.
func (p *muxPeer) track(cs ...io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *muxPeer) untrack(cs ...io.Closer) {
	p.mu.Lock()
	for _, c := range cs {
		delete(p.conns, c)
	}
	p.mu.Unlock()
}

// join copies both ways between a socket and a stream, passing on each
// direction's end as a half-close, and closes both when both are done.
func (p *muxPeer) join(c *net.TCPConn, s muxStream) {
	if !p.track(c, s) {
		c.Close()
		s.Close()
		return
	}
	defer p.untrack(c, s)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(s, c)
		if err == nil {
			err = s.CloseWrite()
		}
		done <- err
	}()
	_, err := io.Copy(c, s)
	if err == nil {
		err = c.CloseWrite()
	}
	if err != nil {
		// A failed direction ends the other at once.
		c.Close()
		s.Close()
	}
	<-done
	c.Close()
	s.Close()
}

// Close closes the listener, the session and every socket, and waits for
// every goroutine of the peer.
func (p *muxPeer) Close() {
	p.mu.Lock()
	p.closed = true
	conns, s := p.conns, p.session
	p.conns = map[io.Closer]struct{}{}
	p.mu.Unlock()
	p.ln.Close()
	if s != nil {
		s.Close()
	}
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
