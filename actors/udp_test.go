package actors

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

func udpFwd(target string) forward.Forward {
	return forward.Forward{Bind: "127.0.0.1:0", Target: target, UDP: true}
}

// udpRoundTrip sends one datagram and expects it back whole. This is UDP:
// a datagram the kernel dropped is sent again, and the echo of an earlier
// try may then arrive late; it must match an earlier message exactly.
func udpRoundTrip(t testing.TB, c *net.UDPConn, msg []byte) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for try := 0; try < 40; try++ {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(250 * time.Millisecond)) // when to send again, not a timing assert
		for {
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			if bytes.Equal(buf[:n], msg) {
				return
			}
			if !udpSeen(c, buf[:n]) {
				t.Fatalf("sent %d bytes, got back %d bytes that match nothing sent", len(msg), n)
			}
		}
	}
	t.Fatalf("no echo of a %d-byte datagram after 40 tries", len(msg))
}

var (
	sentMu sync.Mutex
	sent   = map[*net.UDPConn][][]byte{}
)

// udpSeen reports whether b is a datagram c sent before (a late echo).
func udpSeen(c *net.UDPConn, b []byte) bool {
	sentMu.Lock()
	defer sentMu.Unlock()
	for _, m := range sent[c] {
		if bytes.Equal(m, b) {
			return true
		}
	}
	return false
}

func udpClient(t testing.TB, addr net.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestUDPForward: many clients at once, each with datagrams of many sizes
// (an empty one first: UDP has no end of stream, so a read of no bytes is
// a datagram at both sides); every datagram comes back whole, to the
// client that sent it, and each client has its own socket at the target,
// one for the whole run.
func TestUDPForward(t *testing.T) {
	echo := testkit.NewUDPEcho(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{udpFwd(echo.Addr)}})
	addr := p.B.ForwardAddrs()[0]
	sizes := []int{0, 1, 2, 100, 1400, 1500, 9000, 30000, 65000}
	const clients = 16
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := udpClient(t, addr)
			for j, n := range sizes {
				msg := testkit.Payload(uint64(i*100+j), n)
				copy(msg, fmt.Sprintf("%d/%d", i, j))
				udpRoundTrip(t, c, msg)
				sentMu.Lock()
				sent[c] = append(sent[c], msg)
				sentMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got := echo.Peers(); got != clients {
		t.Errorf("the target saw %d source sockets, want one per client (%d)", got, clients)
	}
}

// TestUDPIdleExpiry: a session idle past --udp-idle is closed, with its
// stream at both ends and its socket at the target; the client's next
// datagram starts a new one.
func TestUDPIdleExpiry(t *testing.T) {
	echo := testkit.NewUDPEcho(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{udpFwd(echo.Addr)},
		B: func(c *Config) { c.UDPIdle = 20 * time.Millisecond }})
	c := udpClient(t, p.B.ForwardAddrs()[0])
	udpRoundTrip(t, c, []byte("first"))
	p.BLog.Wait(t, 10*time.Second, "the idle session expiring", func(r testkit.Record) bool { return r.Msg == "UDP session expired" })
	// A datagram stream has no half-close: the session's FIN ends the
	// stream at the far end too, which closes its socket at the target
	// and answers FIN (it used to stay half open until the link ended).
	for side, log := range map[string]*testkit.Recorder{"the forward's": p.BLog, "the target's": p.ALog} {
		log.Wait(t, 10*time.Second, side+" stream of the session ending", func(r testkit.Record) bool { return r.Msg == "UDP flow's stream ended" })
	}
	udpRoundTrip(t, c, []byte("second"))
	if echo.Peers() != 2 {
		t.Errorf("target saw %d sockets, want a new one after expiry (2)", echo.Peers())
	}
}

// TestUDPMax: past --udp-max sessions, the least recently active is
// evicted; every client still gets its echoes.
func TestUDPMax(t *testing.T) {
	echo := testkit.NewUDPEcho(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{udpFwd(echo.Addr)},
		B: func(c *Config) { c.UDPMax = 2 }})
	var cs []*net.UDPConn
	for i := range 3 {
		c := udpClient(t, p.B.ForwardAddrs()[0])
		udpRoundTrip(t, c, []byte{byte(i)})
		cs = append(cs, c)
	}
	p.BLog.Wait(t, 10*time.Second, "an eviction", func(r testkit.Record) bool { return r.Msg == "UDP session evicted (limit reached)" })
	udpRoundTrip(t, cs[0], []byte("evicted, and back"))
}

// TestUDPTooLarge: a datagram larger than the link's frame limit is
// dropped and counted, never cut; smaller ones pass.
func TestUDPTooLarge(t *testing.T) {
	echo := testkit.NewUDPEcho(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{udpFwd(echo.Addr)},
		A: func(c *Config) { c.MaxPayload = 4096 }})
	c := udpClient(t, p.B.ForwardAddrs()[0])
	if _, err := c.Write(make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the large datagram counted as dropped", func() bool { return p.B.Stats().droppedDatagrams.Load() >= 1 })
	udpRoundTrip(t, c, testkit.Payload(1, 4000))
}

// TestUDPRemote: -R with /udp: the peer listens for datagrams and this side
// sends them on to its target.
func TestUDPRemote(t *testing.T) {
	echo := testkit.NewUDPEcho(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().String()
	pc.Close()
	p := newTestPair(t, pairConfig{B: func(c *Config) {
		c.Remotes = []forward.Forward{{Bind: port, Target: echo.Addr, UDP: true}}
	}})
	remoteListening(t, p.BLog, 1)
	a, _ := net.ResolveUDPAddr("udp", port)
	udpRoundTrip(t, udpClient(t, a), []byte("over the reverse forward"))
}
