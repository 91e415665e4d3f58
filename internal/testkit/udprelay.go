package testkit

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// UDPRelay forwards datagrams between clients and one target as a NAT
// does: each client address gets a socket of its own towards the target
// (a mapping). Rebind moves every mapping to a new socket, so the target
// sees the client's source port change mid-flow (a NAT rebinding); Cut
// forgets the mappings and drops what their clients send from then on, as
// a NAT that lost its state behind a client that keeps its port.
type UDPRelay struct {
	pc     *net.UDPConn // towards the clients
	target *net.UDPAddr
	wg     sync.WaitGroup

	mu      sync.Mutex
	flows   map[string]*udpFlow // by client address
	cut     map[string]bool     // clients whose mapping was cut
	closed  bool
	rebinds int
	// FromTarget counts the bytes the target sent back through each
	// generation of sockets: index 0 before the first Rebind, 1 after it...
	fromTarget []*atomic.Int64
}

type udpFlow struct {
	client *net.UDPAddr
	up     *net.UDPConn // connected to the target
}

// NewUDPRelay relays to target until the test ends.
func NewUDPRelay(t testing.TB, target string) *UDPRelay {
	t.Helper()
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &UDPRelay{pc: pc, target: ta, flows: map[string]*udpFlow{}, cut: map[string]bool{}, fromTarget: []*atomic.Int64{new(atomic.Int64)}}
	r.wg.Add(1)
	go r.fromClients()
	t.Cleanup(r.close)
	return r
}

// Addr is where clients send.
func (r *UDPRelay) Addr() string { return r.pc.LocalAddr().String() }

// fromClients forwards what clients send, making each new client's
// mapping.
func (r *UDPRelay) fromClients() {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.pc.ReadFromUDP(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		f := r.flows[from.String()]
		if f == nil && !r.cut[from.String()] && !r.closed {
			f = &udpFlow{client: from}
			if !r.mapLocked(f) {
				f = nil
			}
		}
		var up *net.UDPConn
		if f != nil {
			up = f.up
		}
		r.mu.Unlock()
		if up != nil {
			_, _ = up.Write(buf[:n]) // a datagram lost to a Rebind is QUIC's to resend
		}
	}
}

// mapLocked gives f a new socket towards the target and starts its reader.
func (r *UDPRelay) mapLocked(f *udpFlow) bool {
	up, err := net.DialUDP("udp", nil, r.target)
	if err != nil {
		return false
	}
	f.up = up
	r.flows[f.client.String()] = f
	counter := r.fromTarget[r.rebinds]
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			counter.Add(int64(n))
			_, _ = r.pc.WriteToUDP(buf[:n], f.client)
		}
	}()
	return true
}

// Rebind moves every mapping to a new socket: the target sees each
// client come from a new port. What the target still sends to the old
// ones is lost.
func (r *UDPRelay) Rebind() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebinds++
	r.fromTarget = append(r.fromTarget, new(atomic.Int64))
	for _, f := range r.flows {
		old := f.up
		if !r.mapLocked(f) {
			delete(r.flows, f.client.String())
		}
		old.Close()
	}
}

// FromTarget is how many bytes the target sent through the sockets of
// generation gen (0: before the first Rebind).
func (r *UDPRelay) FromTarget(gen int) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen >= len(r.fromTarget) {
		return 0
	}
	return r.fromTarget[gen].Load()
}

// Flows is how many mappings the relay has made and not cut.
func (r *UDPRelay) Flows() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.flows)
}

// Cut forgets every mapping: what their clients send is dropped from
// now on, and the target's answers go nowhere. A client that comes from
// a new address gets a new mapping.
func (r *UDPRelay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, f := range r.flows {
		r.cut[k] = true
		f.up.Close()
		delete(r.flows, k)
	}
}

func (r *UDPRelay) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.Cut()
	r.pc.Close()
	r.wg.Wait()
}
