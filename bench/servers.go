package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// server is an accept loop on loopback that runs handle for each
// connection, tracks what it accepted and closes it all on Close.
type server struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// newServer listens on loopback; serve starts accepting.
func newServer() (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &server{ln: ln, conns: map[net.Conn]struct{}{}}, nil
}

// serve runs handle for each connection accepted, on a goroutine of its
// own, until Close.
func (s *server) serve(handle func(net.Conn)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns[c] = struct{}{}
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				handle(c)
			}()
		}
	}()
}

// forget closes c and stops tracking it.
func (s *server) forget(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// Addr is the server's address.
func (s *server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for every
// handler.
func (s *server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// Sink is the server of the bulk workloads. A client sends frames, each an
// 8-byte header (payload length and sequence number, big-endian uint32s)
// and a payload that starts and ends with the sequence number; a frame of
// length 0 ends the stream, and the sink answers with the payload bytes it
// received (8 bytes, big-endian) and closes. The sink checks every frame's
// sequence and both ends of its payload, so a lost, repeated, reordered
// or truncated frame is an error, at next to no cost per byte; the end
// needs no half-close, which smux's cannot always deliver (BENCHMARKS.md).
// It also counts what it receives, all connections together, as it
// arrives: the receiver's side of a throughput figure.
type Sink struct {
	*server
	received atomic.Int64
	failures atomic.Int64
	mu       sync.Mutex
	goal     int64
	reached  chan struct{}
}

// NewSink starts a Sink on loopback.
func NewSink() (*Sink, error) {
	srv, err := newServer()
	if err != nil {
		return nil, err
	}
	return serveSink(srv), nil
}

// newSinkOn starts a Sink on ln (a listener in a netem namespace).
func newSinkOn(ln net.Listener) *Sink {
	return serveSink(&server{ln: ln, conns: map[net.Conn]struct{}{}})
}

func serveSink(srv *server) *Sink {
	s := &Sink{server: srv}
	s.serve(s.handle)
	return s
}

// sinkBuffer is the sink's read buffer per connection.
const sinkBuffer = 256 << 10

// frameHeader is the size of a Sink frame's header.
const frameHeader = 8

// errFrame is a frame the Sink finds wrong.
var errFrame = errors.New("bad frame")

func (s *Sink) handle(c net.Conn) {
	defer s.forget(c)
	n, err := s.drain(bufio.NewReaderSize(c, sinkBuffer))
	if err != nil {
		s.failures.Add(1)
		return // the client reads EOF instead of a count
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	_, _ = c.Write(b[:])
}

// drain reads frames to the end frame and returns the payload bytes.
func (s *Sink) drain(r *bufio.Reader) (int64, error) {
	var n int64
	for seq := uint32(0); ; seq++ {
		h, err := r.Peek(frameHeader)
		if err != nil {
			return n, err
		}
		size, got := binary.BigEndian.Uint32(h), binary.BigEndian.Uint32(h[4:])
		_, _ = r.Discard(frameHeader)
		if size == 0 {
			return n, nil
		}
		if got != seq || size < 8 {
			return n, fmt.Errorf("%w: sequence %d (want %d), length %d", errFrame, got, seq, size)
		}
		// The payload: its first 4 bytes, the middle skipped (the reads
		// still happen, 256 KiB at a time), its last 4.
		for i, skip := range []int{0, int(size) - 4} {
			if skip > 0 {
				if _, err := r.Discard(skip - 4); err != nil {
					return n, err
				}
			}
			p, err := r.Peek(4)
			if err != nil {
				return n, err
			}
			if binary.BigEndian.Uint32(p) != seq {
				return n, fmt.Errorf("%w: frame %d's payload %s does not carry its number", errFrame, seq, [...]string{"start", "end"}[i])
			}
			_, _ = r.Discard(4)
			s.add(4)
		}
		s.add(int64(size) - 8)
		n += int64(size)
	}
}

// Failures counts the streams the sink found wrong.
func (s *Sink) Failures() int64 { return s.failures.Load() }

func (s *Sink) add(k int64) {
	total := s.received.Add(k)
	s.mu.Lock()
	if s.reached != nil && total >= s.goal {
		close(s.reached)
		s.reached = nil
	}
	s.mu.Unlock()
}

// Received is how many bytes the sink has read, all connections together.
func (s *Sink) Received() int64 { return s.received.Load() }

// Await returns a channel closed once the sink has received n bytes in
// all. One Await at a time: a new one replaces the last.
func (s *Sink) Await(n int64) <-chan struct{} {
	ch := make(chan struct{})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.received.Load() >= n {
		close(ch)
		return ch
	}
	s.goal, s.reached = n, ch
	return ch
}

// Echo is a server that writes back what it reads and closes its write
// side at the end of the input.
type Echo struct{ *server }

// NewEcho starts an Echo on loopback.
func NewEcho() (*Echo, error) {
	srv, err := newServer()
	if err != nil {
		return nil, err
	}
	return serveEcho(srv), nil
}

// newEchoOn is an Echo on ln (a listener in a netem namespace, say).
func newEchoOn(ln net.Listener) *Echo {
	return serveEcho(&server{ln: ln, conns: map[net.Conn]struct{}{}})
}

func serveEcho(srv *server) *Echo {
	e := &Echo{server: srv}
	e.serve(func(c net.Conn) {
		defer e.forget(c)
		buf := make([]byte, 32<<10)
		_, _ = io.CopyBuffer(onlyWriter{c}, onlyReader{c}, buf)
		_ = c.(*net.TCPConn).CloseWrite()
	})
	return e
}

// Hold is a server for idle streams: it answers each connection's first
// byte with the same byte, then keeps the connection open, idle, with no
// goroutine of its own, until Close.
type Hold struct {
	*server
	held atomic.Int64
}

// NewHold starts a Hold on loopback.
func NewHold() (*Hold, error) {
	srv, err := newServer()
	if err != nil {
		return nil, err
	}
	h := &Hold{server: srv}
	h.serve(func(c net.Conn) {
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			h.forget(c)
			return
		}
		// Counted before the answer: a client that has its byte back may
		// ask at once how many are held, and must find itself counted.
		h.held.Add(1)
		if _, err := c.Write(b[:]); err != nil {
			h.held.Add(-1)
			h.forget(c)
			return
		}
	})
	return h, nil
}

// Held is how many connections have had their byte answered.
func (h *Hold) Held() int64 { return h.held.Load() }
