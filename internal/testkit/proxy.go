package testkit

import (
	"net"
	"sync"
	"testing"
)

// Proxy relays connections to a target and can cut them all at once, to
// inject a carrier fault between two peers.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	cond   *sync.Cond
	hold   bool
}

// NewProxy starts a proxy to target on loopback; it stops when the test
// ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Resume()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is where to connect to be relayed.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Pause stops relaying bytes, both ways, without closing anything: the
// peers see a silent network.
func (p *Proxy) Pause() {
	p.mu.Lock()
	p.hold = true
	p.mu.Unlock()
}

// Resume relays bytes again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.hold = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Cut closes every relayed connection now; new ones are still accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		d, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[d] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			defer dst.Close()
			defer src.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := src.Read(buf)
				p.mu.Lock()
				for p.hold {
					p.cond.Wait()
				}
				p.mu.Unlock()
				if n > 0 {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}
		go pipe(c, d)
		go pipe(d, c)
	}
}
