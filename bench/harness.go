package bench

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
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
	New  func(target string, o Options) (Tunnel, error)
	// Far and Near, for a system with two peers, build each peer alone,
	// so that they can run in processes of their own (the idle workload,
	// see Idle). Far listens for the carrier (its Addr) and carries
	// streams to target; Near dials the carrier and listens for clients
	// (its Addr), and returns once its link is up. Each is told the
	// target: a sockmux forward names it at the near peer.
	Far  func(target string, o Options) (Tunnel, error)
	Near func(carrier, target string, o Options) (Tunnel, error)
}

// joined is a tunnel made of a Far and a Near peer, with the emulated path
// between them.
type joined struct {
	far, near Tunnel
	emu       *Emulator
}

// join builds a tunnel from a system's two peers, its carrier across o's
// path.
func join(far func(string, Options) (Tunnel, error), near func(string, string, Options) (Tunnel, error)) func(string, Options) (Tunnel, error) {
	return func(target string, o Options) (Tunnel, error) {
		f, err := far(target, o)
		if err != nil {
			return nil, err
		}
		carrier, emu, err := o.across(f.Addr())
		if err != nil {
			f.Close()
			return nil, err
		}
		n, err := near(carrier, target, o)
		if err != nil {
			closeEmu(emu)
			f.Close()
			return nil, err
		}
		return &joined{far: f, near: n, emu: emu}, nil
	}
}

func (j *joined) Addr() string { return j.near.Addr() }

// Close closes the near peer first (a sockmux node says GOAWAY across the
// path), then the path, then the far peer.
func (j *joined) Close() {
	j.near.Close()
	closeEmu(j.emu)
	j.far.Close()
}

// Options shape a tunnel for a workload. The zero Options is plain
// loopback with every system's defaults.
type Options struct {
	// Delay and Rate, when either is set, put an Emulator (NewEmulator's
	// arguments: one-way delay, bytes per second per connection) on the
	// path between the tunnel's two ends: a multiplexer's carrier, the
	// relay chain's middle hop, the connection itself for Direct.
	Delay time.Duration
	Rate  int64
	// Streams is how many streams the workload holds open at once. A
	// system whose default stream limit is lower has it raised to fit
	// (sockmux's MaxStreams, 1024 by default); nothing else departs from
	// the defaults.
	Streams int
}

// emulated tells whether o puts an Emulator on the path.
func (o Options) emulated() bool { return o.Delay > 0 || o.Rate > 0 }

// across returns the address that reaches addr across o's path, and what
// to close with the tunnel (nil for plain loopback).
func (o Options) across(addr string) (string, *Emulator, error) {
	if !o.emulated() {
		return addr, nil, nil
	}
	e, err := NewEmulator(addr, o.Delay, o.Rate)
	if err != nil {
		return "", nil, err
	}
	return e.Addr(), e, nil
}

// The systems every workload can run through.
var (
	Relay   = System{Name: "relay", New: NewRelayChain}
	Yamux   = System{Name: "yamux", New: NewYamux, Far: yamuxFar, Near: yamuxNear}
	Smux    = System{Name: "smux", New: NewSmux, Far: smuxFar, Near: smuxNear}
	Sockmux = System{Name: "sockmux", New: NewSockmux, Far: sockmuxFar, Near: sockmuxNear}
	// Direct is no tunnel at all: clients reach the target across the
	// path itself, the baseline of the time to first response.
	Direct = System{Name: "direct", New: NewDirect}
)

// Systems are the systems compared, baselines first: the relay chain, then
// the two multiplexer libraries, then sockmux.
var Systems = []System{Relay, Yamux, Smux, Sockmux}

// SystemByName finds one of Systems, or Direct.
func SystemByName(name string) (System, bool) {
	for _, s := range append(slices.Clone(Systems), Direct) {
		if s.Name == name {
			return s, true
		}
	}
	return System{}, false
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
// peer → server). With an emulated path it lies between the two relays.
type relayChain struct {
	first, second *relay
	emu           *Emulator
}

// NewRelayChain builds a chain of two relays to target.
func NewRelayChain(target string, o Options) (Tunnel, error) {
	second, err := newRelay(target)
	if err != nil {
		return nil, err
	}
	next, emu, err := o.across(second.Addr())
	if err != nil {
		second.Close()
		return nil, err
	}
	first, err := newRelay(next)
	if err != nil {
		closeEmu(emu)
		second.Close()
		return nil, err
	}
	return &relayChain{first, second, emu}, nil
}

func (c *relayChain) Addr() string { return c.first.Addr() }

func (c *relayChain) Close() {
	c.first.Close()
	closeEmu(c.emu)
	c.second.Close()
}

func closeEmu(e *Emulator) {
	if e != nil {
		e.Close()
	}
}

// direct is the target itself, or the path in front of it.
type direct struct {
	addr string
	emu  *Emulator
}

// NewDirect reaches target with no tunnel: across the emulated path when o
// has one, else at its own address.
func NewDirect(target string, o Options) (Tunnel, error) {
	addr, emu, err := o.across(target)
	if err != nil {
		return nil, err
	}
	return &direct{addr, emu}, nil
}

func (d *direct) Addr() string { return d.addr }
func (d *direct) Close()       { closeEmu(d.emu) }

// NewSockmux builds a sockmux tunnel to target with default settings (but
// MaxStreams, raised to o.Streams when that is more): two nodes in this
// process, the dialling one with a -L forward, their carrier across o's
// path.
func NewSockmux(target string, o Options) (Tunnel, error) {
	return join(sockmuxFar, sockmuxNear)(target, o)
}

// sockmuxNode is one sockmux peer.
type sockmuxNode struct {
	n    *actors.Node
	addr string
}

func (s *sockmuxNode) Addr() string { return s.addr }
func (s *sockmuxNode) Close()       { s.n.Close() }

func sockmuxMaxStreams(o Options) int {
	if o.Streams > actors.DefaultMaxStreams {
		return o.Streams
	}
	return 0
}

// sockmuxFar is the node that listens for links and dials the target.
func sockmuxFar(_ string, o Options) (Tunnel, error) {
	n, err := actors.NewNode(actors.Config{Logger: slog.New(slog.DiscardHandler), MaxStreams: sockmuxMaxStreams(o)})
	if err != nil {
		return nil, err
	}
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		n.Close()
		return nil, err
	}
	n.Serve(ln)
	return &sockmuxNode{n: n, addr: ln.Addr().String()}, nil
}

// sockmuxNear is the node that dials the link and has the -L forward to
// target (which the far node dials, wherever it is).
func sockmuxNear(carrier, target string, o Options) (Tunnel, error) {
	up := make(chan struct{}, 1)
	n, err := actors.NewNode(actors.Config{Logger: slog.New(slog.DiscardHandler), MaxStreams: sockmuxMaxStreams(o),
		Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: target}},
		OnLink: func(ev actors.LinkEvent) {
			if ev.Up {
				select {
				case up <- struct{}{}:
				default:
				}
			}
		}})
	if err != nil {
		return nil, err
	}
	d, err := carriers.NewDialer(carrier)
	if err != nil {
		n.Close()
		return nil, err
	}
	n.Connect(d)
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		n.Close()
		return nil, errors.New("sockmux link did not come up")
	}
	return &sockmuxNode{n: n, addr: n.ForwardAddrs()[0].String()}, nil
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
