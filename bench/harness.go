package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"sockmux/actors"
	"sockmux/carriers"
	"sockmux/engine"
)

// Tunnel is one system under test: clients connect to Addr and are carried
// to the target it was built for.
type Tunnel interface {
	Addr() string
	Close()
}

// System names a way to build a Tunnel to a target.
type System struct {
	Name string
	New  func(target string) (Tunnel, error)
}

// Systems are the systems every workload runs through, baseline first.
var Systems = []System{
	{"relay", NewRelayChain},
	{"sockmux", NewSockmux},
}

// relay copies each accepted connection to a dialled one, both ways: the
// cheapest a hop can be.
type relay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func newRelay(target string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			d, err := net.Dial("tcp", r.target)
			if err != nil {
				c.Close()
				return
			}
			r.track(c, d)
			defer r.untrack(c, d)
			done := make(chan struct{})
			go func() {
				copyFn(d, c)
				_ = d.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			copyFn(c, d)
			_ = c.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}

func (r *relay) track(cs ...net.Conn) {
	r.mu.Lock()
	for _, c := range cs {
		r.conns[c] = struct{}{}
	}
	r.mu.Unlock()
}

func (r *relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	for _, c := range cs {
		delete(r.conns, c)
		c.Close()
	}
	r.mu.Unlock()
}

func (r *relay) Addr() string { return r.ln.Addr().String() }

func (r *relay) Close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// relayChain is client → relay → relay → server: three TCP connections per
// client, as many as a sockmux tunnel uses (client → peer, the carrier,
// peer → server).
type relayChain struct{ first, second *relay }

// NewRelayChain builds a chain of two relays to target.
func NewRelayChain(target string) (Tunnel, error) {
	second, err := newRelay(target)
	if err != nil {
		return nil, err
	}
	first, err := newRelay(second.Addr())
	if err != nil {
		second.Close()
		return nil, err
	}
	return &relayChain{first, second}, nil
}

func (c *relayChain) Addr() string { return c.first.Addr() }

func (c *relayChain) Close() {
	c.first.Close()
	c.second.Close()
}

// sockmuxTunnel is two nodes in this process linked over loopback TCP; the
// dialling one has a -L forward to the target.
type sockmuxTunnel struct {
	a, b *actors.Node
	addr string
}

// NewSockmux builds a sockmux tunnel to target with default settings.
func NewSockmux(target string) (Tunnel, error) {
	log := slog.New(slog.DiscardHandler)
	up := make(chan struct{}, 2)
	onLink := func(ev actors.LinkEvent) {
		if ev.Up {
			up <- struct{}{}
		}
	}
	a, err := actors.NewNode(actors.Config{Logger: log, OnLink: onLink})
	if err != nil {
		return nil, err
	}
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Serve(ln)
	b, err := actors.NewNode(actors.Config{Logger: log, OnLink: onLink,
		Forwards: []engine.Forward{{Bind: "127.0.0.1:0", Target: target}}})
	if err != nil {
		a.Close()
		return nil, err
	}
	d, _ := carriers.NewDialer(ln.Addr().String())
	b.Connect(d)
	for range 2 {
		select {
		case <-up:
		case <-time.After(10 * time.Second):
			a.Close()
			b.Close()
			return nil, errors.New("sockmux link did not come up")
		}
	}
	return &sockmuxTunnel{a: a, b: b, addr: b.ForwardAddrs()[0].String()}, nil
}

func (t *sockmuxTunnel) Addr() string { return t.addr }

func (t *sockmuxTunnel) Close() {
	t.b.Close()
	t.a.Close()
}

// Sink is a server that reads each connection to its end, then writes the
// byte count (8 bytes, big-endian) and closes: the client knows everything
// arrived when it reads the count.
type Sink struct {
	ln net.Listener
	wg sync.WaitGroup
}

// NewSink starts a Sink on loopback.
func NewSink() (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				// io.Discard's own ReadFrom reads 8 KiB at a time,
				// which would make the sink the bottleneck.
				n, _ := io.CopyBuffer(onlyWriter{io.Discard}, onlyReader{c}, make([]byte, 256<<10))
				var b [8]byte
				for i := range 8 {
					b[i] = byte(n >> (56 - 8*i))
				}
				_, _ = c.Write(b[:])
			}()
		}
	}()
	return s, nil
}

// Addr is the sink's address.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Close stops the sink.
func (s *Sink) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// Push sends size bytes through addr to a Sink and returns once the sink
// confirms it received them all.
func Push(addr string, size int64, block []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for n := int64(0); n < size; {
		k := min(int64(len(block)), size-n)
		if _, err := c.Write(block[:k]); err != nil {
			return err
		}
		n += k
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("reading the sink's count: %w", err)
	}
	var got int64
	for i := range 8 {
		got = got<<8 | int64(b[i])
	}
	if got != size {
		return fmt.Errorf("sink received %d bytes, sent %d", got, size)
	}
	return nil
}

// PushParallel runs streams Pushes of size/streams bytes each at once.
func PushParallel(addr string, size int64, streams int, block []byte) error {
	var wg sync.WaitGroup
	errs := make([]error, streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Push(addr, size/int64(streams), block)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// copyFn is a relay hop's copy loop: a plain read/write with a 256 KiB
// buffer. The wrappers hide ReadFrom/WriteTo, which would splice; on the
// reference machine the plain copy was the faster of the two (1.33 GB/s
// against 1.07-1.23 GB/s for one stream), and the baseline should be the
// best a relay can do.
func copyFn(dst, src net.Conn) {
	_, _ = io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, make([]byte, 256<<10))
}

type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }
