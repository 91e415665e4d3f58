package testkit

import (
	"net"
	"sync"
	"testing"
)

// Proxy relays connections to a target and can cut or pause them, all at
// once or one at a time, and refuse new ones, to inject carrier faults
// between two peers.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	pairs  []*proxyPair // relayed connections, oldest first
	wg     sync.WaitGroup
	cond   *sync.Cond
	hold   bool
	refuse bool
	tap    Tap
}

// Tap sees every chunk a Proxy relays, before it is written on: toTarget
// says its direction, off is where the chunk starts in that direction of
// its connection. It may change the chunk in place (flip a bit); it runs
// on the relaying goroutine, so it must not block.
type Tap func(toTarget bool, off int64, b []byte)

// SetTap makes tap see (and perhaps alter) what is relayed from now on;
// nil relays untouched.
func (p *Proxy) SetTap(tap Tap) {
	p.mu.Lock()
	p.tap = tap
	p.mu.Unlock()
}

// proxyPair is one relayed connection: the client's side and the
// target's.
type proxyPair struct {
	c, d net.Conn
	hold bool
}

// NewProxy starts a proxy to target on loopback; it stops when the test
// ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
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

// Resume relays bytes again, on every connection.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.hold = false
	for _, pr := range p.pairs {
		pr.hold = false
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Cut closes every relayed connection now; new ones are still accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	for _, pr := range p.pairs {
		pr.c.Close()
		pr.d.Close()
	}
	p.pairs = nil
	p.mu.Unlock()
}

// Down is the far end's process gone: the proxy stops listening (a dial
// of its address is refused from now on) and closes every relayed
// connection.
func (p *Proxy) Down() {
	p.ln.Close()
	p.Cut()
}

// Conns is the number of connections being relayed.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// CutOne closes the i-th oldest relayed connection; it reports false when
// there is none.
func (p *Proxy) CutOne(i int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i >= len(p.pairs) {
		return false
	}
	pr := p.pairs[i]
	pr.c.Close()
	pr.d.Close()
	p.pairs = append(p.pairs[:i], p.pairs[i+1:]...)
	return true
}

// PauseOne stops relaying bytes on the i-th oldest connection, both ways,
// until Resume: a carrier that stops reading. It reports false when there
// is none.
func (p *Proxy) PauseOne(i int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i >= len(p.pairs) {
		return false
	}
	p.pairs[i].hold = true
	return true
}

// Refuse makes the proxy close the connections it accepts from now on (a
// path that is down), or accept them again.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

func (p *Proxy) forget(pr *proxyPair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, q := range p.pairs {
		if q == pr {
			p.pairs = append(p.pairs[:i], p.pairs[i+1:]...)
			return
		}
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		d, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pr := &proxyPair{c: c, d: d}
		p.mu.Lock()
		p.pairs = append(p.pairs, pr)
		p.mu.Unlock()
		p.wg.Add(3)
		// A direction that ends passes its end on (FIN) and stops reading;
		// the pair is closed once both have ended. What one side sent just
		// before it closed (its last GOAWAY) still reaches the other, as
		// through a real network.
		var ends sync.WaitGroup
		ends.Add(2)
		go func() {
			defer p.wg.Done()
			ends.Wait()
			c.Close()
			d.Close()
			p.forget(pr)
		}()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			defer ends.Done()
			defer func() {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				} else {
					dst.Close()
				}
				if cr, ok := src.(interface{ CloseRead() error }); ok {
					_ = cr.CloseRead()
				} else {
					src.Close()
				}
			}()
			buf := make([]byte, 64<<10)
			var off int64
			for {
				n, err := src.Read(buf)
				p.mu.Lock()
				for p.hold || pr.hold {
					p.cond.Wait()
				}
				tap := p.tap
				p.mu.Unlock()
				if n > 0 && tap != nil {
					tap(dst == d, off, buf[:n])
				}
				off += int64(n)
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
