package testkit

import (
	"net"
	"sync"
	"testing"
)

// UDPEcho is a UDP echo server that remembers the source addresses it saw.
type UDPEcho struct {
	Addr  string
	mu    sync.Mutex
	peers map[string]bool
}

// NewUDPEcho starts a UDP echo server on loopback until the test ends.
func NewUDPEcho(t testing.TB) *UDPEcho {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &UDPEcho{Addr: pc.LocalAddr().String(), peers: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.peers[from.String()] = true
			e.mu.Unlock()
			pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return e
}

// Peers is how many distinct source addresses the server has seen.
func (e *UDPEcho) Peers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.peers)
}
