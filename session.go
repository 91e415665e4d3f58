package sockmux

// A Session: one link to one peer, over the carrier connections given to
// Client or Server, with its streams.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/sockmux/sockmux/actors"
)

// Session is one link to one peer: streams opened by either side, over one
// carrier connection or several. It is a net.Listener, whose Accept is
// AcceptStream's. It ends when Close is called, when the peer closes it,
// or when its link is lost (its carriers gone and not resumed within the
// resume window); Done is closed then, and Err says why.
type Session struct {
	node   *actors.Node
	server bool
	local  net.Addr
	remote net.Addr

	accept chan *actors.LocalConn // the peer's streams, for AcceptStream
	up     chan struct{}          // closed once the link is up
	upOnce sync.Once

	done    chan struct{} // closed when the session ends
	endOnce sync.Once
	err     error         // why it ended; written once, before done is closed
	stopped chan struct{} // closed once the node has stopped
}

// Client runs a session over conn as the side that dialled: it returns
// once the handshake is done (with the reason if it failed, conn then
// closed). cfg nil is DefaultConfig().
func Client(conn net.Conn, cfg *Config) (*Session, error) {
	return start(conn, cfg, false)
}

// Server runs a session over conn as the side that was dialled: it
// returns once the handshake is done (with the reason if it failed, conn
// then closed). cfg nil is DefaultConfig(). A striping client's further
// carrier connections, and those it resumes the link with, are given to
// AddCarrier.
func Server(conn net.Conn, cfg *Config) (*Session, error) {
	return start(conn, cfg, true)
}

func start(conn net.Conn, cfg *Config, server bool) (*Session, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		conn.Close()
		return nil, err
	}
	if server && cfg.Dialer != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: Dialer: a server does not dial (AddCarrier takes its carriers)", ErrBadConfig)
	}
	s := &Session{server: server, local: conn.LocalAddr(), remote: conn.RemoteAddr(),
		accept: make(chan *actors.LocalConn, cfg.AcceptBacklog), up: make(chan struct{}),
		done: make(chan struct{}), stopped: make(chan struct{})}
	node, err := actors.NewNode(cfg.nodeConfig(s))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	s.node = node
	var ended <-chan error
	if server {
		ended = node.ServeConn(conn)
	} else {
		node.Connect(&carrierDialer{first: conn, dial: cfg.Dialer, peer: conn.RemoteAddr().String()})
	}
	go s.watch(ended)
	select {
	case <-s.up:
		return s, nil
	case <-s.done:
		<-s.stopped
		return nil, s.err
	}
}

// watch ends the session when the node reports its link's end, and
// stops the node once the session has ended.
func (s *Session) watch(ended <-chan error) {
	select {
	case err := <-s.node.Failed():
		s.end(err)
	case err := <-ended:
		if err == nil {
			err = errors.New("the link ended")
		}
		s.end(err)
	case <-s.done:
	}
	s.node.Close()
	close(s.stopped)
}

// end ends the session, once: err is why (wrapped with ErrSessionClosed).
func (s *Session) end(err error) {
	s.endOnce.Do(func() {
		if !errors.Is(err, ErrSessionClosed) {
			err = fmt.Errorf("%w: %w", ErrSessionClosed, err)
		}
		s.err = err
		close(s.done)
	})
}

// linkEvent is the node's word on its link: up, or down for good (a
// Session's link is one session: it is not redialled).
func (s *Session) linkEvent(ev actors.LinkEvent) {
	if ev.Up {
		s.upOnce.Do(func() { close(s.up) })
		return
	}
	err := ev.Err
	if err == nil {
		err = errors.New("the link ended")
	}
	s.end(err)
}

// offer queues a stream the peer opened for AcceptStream (the node's
// Config.AcceptStream: it must not block).
func (s *Session) offer(c *actors.LocalConn) error {
	select {
	case <-s.done:
		return ErrSessionClosed
	default:
	}
	select {
	case s.accept <- c:
		return nil
	default:
		return ErrAcceptBacklog
	}
}

// Open opens a stream to target (1 to 1024 bytes of UTF-8), which the
// peer's AcceptStream returns with Target set to it. Like yamux's
// OpenStream it does not wait for the peer: what is written at once
// follows the OPEN, and a refusal (the peer's accept backlog full, the
// peer closing) comes as the error of a Read or Write, an *OpenError
// wrapping ErrStreamReset. A ctx already done fails Open at once, as
// net.Dialer's DialContext does; otherwise ctx bounds only the wait for a
// link, when none is up (a client resuming), not the peer's answer.
func (s *Session) Open(ctx context.Context, target string) (*Stream, error) {
	select {
	case <-s.done:
		return nil, s.err
	default:
	}
	c, err := s.node.OpenLocal(ctx, target)
	if err != nil {
		if errors.Is(err, actors.ErrClosed) {
			return nil, s.Err()
		}
		return nil, err
	}
	return &Stream{c: c, s: s}, nil
}

// AcceptStream waits for a stream the peer opened.
func (s *Session) AcceptStream() (*Stream, error) {
	select {
	case c := <-s.accept:
		return &Stream{c: c, s: s}, nil
	case <-s.done:
		return nil, s.err
	}
}

// Accept is AcceptStream as a net.Listener's.
func (s *Session) Accept() (net.Conn, error) {
	st, err := s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return st, nil
}

// AddCarrier adds conn, a further carrier connection a striping client
// dialled (or one it resumes the link with), to a Server's session: it
// joins the link after its handshake. A connection that is not one of
// this link's is refused and closed.
func (s *Session) AddCarrier(conn net.Conn) error {
	if !s.server {
		conn.Close()
		return ErrNotServer
	}
	select {
	case <-s.done:
		conn.Close()
		return s.err
	default:
	}
	s.node.ServeConn(conn) // its result is the joining handshake's, not the link's
	return nil
}

// Close ends the session: the peer is told (GOAWAY), every stream is
// reset, every carrier closed, and Close returns once all of it is done.
func (s *Session) Close() error {
	s.end(ErrSessionClosed)
	<-s.stopped
	for {
		select {
		case c := <-s.accept:
			c.Close()
		default:
			return nil
		}
	}
}

// Addr is the local address of the first carrier connection.
func (s *Session) Addr() net.Addr { return s.local }

// LocalAddr is the local address of the first carrier connection.
func (s *Session) LocalAddr() net.Addr { return s.local }

// RemoteAddr is the peer's address on the first carrier connection.
func (s *Session) RemoteAddr() net.Addr { return s.remote }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended (wrapping ErrSessionClosed), nil while it
// runs.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// carrierDialer is a client's carriers.Dialer: the connection given to
// Client first, then Config.Dialer's.
type carrierDialer struct {
	mu    sync.Mutex
	first net.Conn
	dial  func(ctx context.Context) (net.Conn, error)
	peer  string
}

func (d *carrierDialer) Dial(ctx context.Context) (net.Conn, error) {
	d.mu.Lock()
	c := d.first
	d.first = nil
	d.mu.Unlock()
	if c != nil {
		return c, nil
	}
	if d.dial == nil {
		return nil, ErrNoDialer
	}
	return d.dial(ctx)
}

func (d *carrierDialer) String() string { return d.peer }
