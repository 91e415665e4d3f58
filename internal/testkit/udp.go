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
	e := &UDPEcho{peers: map[string]bool{}}
	e.Addr = serveUDP(t, func(p []byte, from net.Addr) []byte {
		e.mu.Lock()
		e.peers[from.String()] = true
		e.mu.Unlock()
		return p
	})
	return e
}

// NamedUDPEcho starts a UDP server on loopback, until the test ends, that
// answers each datagram with name, a '|', and the datagram (which of
// several targets answered), and returns its address.
func NamedUDPEcho(t testing.TB, name string) string {
	t.Helper()
	return serveUDP(t, func(p []byte, _ net.Addr) []byte { return append([]byte(name+"|"), p...) })
}

// serveUDP answers each datagram a loopback socket gets with what answer
// makes of it, until the test ends, and returns the socket's address.
func serveUDP(t testing.TB, answer func(p []byte, from net.Addr) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(answer(buf[:n], from), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

// Peers is how many distinct source addresses the server has seen.
func (e *UDPEcho) Peers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.peers)
}
