package actors

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// namedUDPEcho is testkit.NamedUDPEcho: it says which edge's target
// answered.
func namedUDPEcho(t testing.TB, name string) string { return testkit.NamedUDPEcho(t, name) }

// freeUDPAddr is a loopback UDP address nothing is bound to.
func freeUDPAddr(t testing.TB) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	a := pc.LocalAddr().(*net.UDPAddr)
	pc.Close()
	return a
}

// freeTCPUDPAddr is a loopback port free for TCP and UDP both, found by
// holding a listener of each on it at once (a port free for UDP alone may
// be some connection's TCP port on a busy machine).
func freeTCPUDPAddr(t testing.TB) *net.UDPAddr {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ln.Addr().(*net.TCPAddr).Port}
		pc, err := net.ListenUDP("udp", a)
		ln.Close()
		if err == nil {
			pc.Close()
			return a
		}
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return nil
}

// pooledClient is one client of a pooled UDP port: its socket (one
// source address, so one flow) and what it has sent, to tell a late
// echo of an earlier try from a wrong one.
type pooledClient struct {
	c    *net.UDPConn
	sent [][]byte
}

// roundTrip sends msg until its echo comes back (this is UDP: a datagram
// may be dropped, by the kernel or because no member was live when it
// came), and returns the name of the target that answered. An answer
// that echoes nothing this client sent fails the test.
func (pc *pooledClient) roundTrip(t testing.TB, msg []byte) string {
	t.Helper()
	pc.sent = append(pc.sent, msg)
	buf := make([]byte, 64<<10)
	for range 80 {
		if _, err := pc.c.Write(msg); err != nil {
			t.Fatal(err)
		}
		pc.c.SetReadDeadline(time.Now().Add(250 * time.Millisecond)) // when to send again, not a timing assert
		for {
			n, err := pc.c.Read(buf)
			if err != nil {
				break
			}
			name, echo, ok := bytes.Cut(buf[:n], []byte("|"))
			if ok && bytes.Equal(echo, msg) {
				return string(name)
			}
			if !ok || !pc.sentBefore(echo) {
				t.Fatalf("sent %d bytes, got back %d bytes that echo nothing sent", len(msg), n)
			}
		}
	}
	t.Fatalf("no echo of a %d-byte datagram after 80 tries", len(msg))
	return ""
}

func (pc *pooledClient) sentBefore(b []byte) bool {
	for _, m := range pc.sent {
		if bytes.Equal(m, b) {
			return true
		}
	}
	return false
}

// flows sends n datagrams of a few sizes from a new client of addr, each
// echoed whole, and returns the client and the one target that answered
// them all (a flow stays with its member).
func flow(t testing.TB, addr *net.UDPAddr, id int) (*pooledClient, string) {
	t.Helper()
	pc := &pooledClient{c: udpClient(t, addr)}
	var name string
	for j, n := range []int{1, 1400, 9000} {
		msg := testkit.Payload(uint64(id*10+j), n)
		copy(msg, fmt.Sprintf("%d/%d", id, j))
		got := pc.roundTrip(t, msg)
		if name != "" && got != name {
			t.Fatalf("flow %d: datagram %d answered by %s, its earlier ones by %s: the flow switched member", id, j, got, name)
		}
		name = got
	}
	return pc, name
}

// udpPoolEdges is a hub (the Pair's A) and two edges (B and one more)
// that both ask it for -R port/udp under pool "dns", each to its own
// named UDP echo.
func udpPoolEdges(t testing.TB) (p *testPair, second *pairEdge, port *net.UDPAddr) {
	t.Helper()
	port = freeUDPAddr(t)
	pooled := func(name string) func(*Config) {
		target := namedUDPEcho(t, name)
		return func(c *Config) {
			c.Remotes = []forward.Forward{{Bind: port.String(), Target: target, UDP: true}}
			c.Pool = "dns"
		}
	}
	p = newTestPair(t, pairConfig{B: pooled("edge1")})
	remoteListening(t, p.BLog, 1)
	second = p.AddEdge(t, pooled("edge2"))
	remoteListening(t, second.Log, 1)
	return p, second, port
}

// TestPooledUDPRemote: two links in one pool share a UDP port; 20 client
// flows spread evenly (fewest open streams first), every datagram comes
// back whole, and each flow stays with one member. When one member's
// link waits to resume, new flows all go to the other, and so does an
// old flow of the waiting member at its next datagram; when the first
// member's link ends for good and the second resumes, the second gets
// the new flows.
func TestPooledUDPRemote(t *testing.T) {
	p, second, port := udpPoolEdges(t)
	count := map[string]int{}
	var onSecond *pooledClient
	for i := range 20 {
		c, name := flow(t, port, i)
		count[name]++
		if name == "edge2" {
			onSecond = c
		}
	}
	if count["edge1"] != 10 || count["edge2"] != 10 {
		t.Fatalf("20 flows went %v, want 10 to each edge", count)
	}

	// The second edge's carrier is cut: the hub keeps its link for the
	// resume window, but gives it no flow (and the edge cannot come
	// back: its proxy refuses).
	second.Proxy.Refuse(true)
	second.Proxy.Cut()
	p.ALog.Wait(t, 10*time.Second, "the hub to see the edge's carrier gone", func(r testkit.Record) bool {
		return r.Msg == "link lost its last carrier; waiting to resume it"
	})
	for i := range 10 {
		if _, name := flow(t, port, 100+i); name != "edge1" {
			t.Fatalf("flow %d after the cut reached %s, want edge1 (the only live member)", i, name)
		}
	}
	if got := onSecond.roundTrip(t, []byte("moved")); got != "edge1" {
		t.Fatalf("a flow of the waiting member was answered by %s after the cut, want edge1", got)
	}

	// The first edge goes away for good; the second, let back in,
	// resumes and gets the next flows.
	p.B.Close()
	p.ALog.Wait(t, 10*time.Second, "the first edge's link to end", func(r testkit.Record) bool { return r.Msg == "link down" })
	second.Proxy.Refuse(false)
	second.Node.Redial()
	p.ALog.Wait(t, 10*time.Second, "the second edge's link to resume", func(r testkit.Record) bool { return r.Msg == "link resumed" })
	for i := range 5 {
		if _, name := flow(t, port, 200+i); name != "edge2" {
			t.Fatalf("flow %d after the first edge left reached %s, want edge2", i, name)
		}
	}
}

// TestUDPPoolRefusals: a second link's UDP BIND of a pooled UDP port
// without the pool, or under another pool name, is refused and says why;
// the pool is untouched.
func TestUDPPoolRefusals(t *testing.T) {
	cases := []struct {
		name, pool string
		text       string // in the refusal's message
	}{
		{"no pool", "", "address already in use"},
		{"other pool", "ntp", `taken by pool "dns"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _, port := udpPoolEdges(t)
			e := p.AddEdge(t, func(c *Config) {
				c.Remotes = []forward.Forward{{Bind: port.String(), Target: "127.0.0.1:9", UDP: true}}
				c.Pool, c.ExitOnForwardFailure = tc.pool, true
			})
			select {
			case err := <-e.Node.Failed():
				if !errors.Is(err, errForwardRefused) || !strings.Contains(err.Error(), tc.text) {
					t.Fatalf("refusal %v, want ErrForwardRefused saying %q", err, tc.text)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the BIND was not refused")
			}
			if _, name := flow(t, port, 1); name != "edge1" && name != "edge2" {
				t.Fatalf("the pool's port reached %q", name)
			}
		})
	}
}

// TestUDPPoolBesideTCPPool: a TCP pool and a UDP pool of the same name
// may hold the same port number side by side; each serves its own.
func TestUDPPoolBesideTCPPool(t *testing.T) {
	port := freeTCPUDPAddr(t)
	tcpTarget, udpTarget := namer(t, "tcp edge"), namedUDPEcho(t, "udp edge")
	p := newTestPair(t, pairConfig{B: func(c *Config) {
		c.Remotes = []forward.Forward{{Bind: port.String(), Target: tcpTarget}, {Bind: port.String(), Target: udpTarget, UDP: true}}
		c.Pool = "both"
	}})
	remoteListening(t, p.BLog, 2)
	if got := heldName(t, port.String(), 8); got != "tcp edge" {
		t.Fatalf("the TCP port reached %q", got)
	}
	if _, name := flow(t, port, 1); name != "udp edge" {
		t.Fatalf("the UDP port reached %q", name)
	}
}

// udpPoolHub is a clustered hub (a node with a BindWatcher) with one edge
// in UDP pool "dns", whose -R on port goes to a namedUDPEcho saying
// name; it returns the hub, the port, its link listener's address and the
// pool's door, as registered. Plain nodes, closed when the test ends (as
// poolHub); adjust, if given, changes the hub's configuration last.
func udpPoolHub(t testing.TB, name string, adjust ...func(*Config)) (hub *Node, port *net.UDPAddr, link, door string) {
	t.Helper()
	port = freeUDPAddr(t)
	target := namedUDPEcho(t, name)
	var mu sync.Mutex
	cfg := Config{BindWatcher: func(rb ReverseBind) {
		mu.Lock()
		defer mu.Unlock()
		if rb.UDP && rb.Pool == "dns" && rb.Members > 0 {
			door = rb.Door
		}
	}}
	for _, f := range adjust {
		f(&cfg)
	}
	hub, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hub.Serve(ln)
	log := testkit.NewRecorder()
	edge, err := NewNode(Config{Logger: slog.New(log), Pool: "dns",
		Remotes: []forward.Forward{{Bind: port.String(), Target: target, UDP: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { edge.Close() })
	d, err := carriers.NewDialer("tcp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	edge.Connect(d)
	remoteListening(t, log, 1)
	waitFor(t, "the pool's door registered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return door != ""
	})
	mu.Lock()
	defer mu.Unlock()
	return hub, port, ln.Addr().String(), door
}

// TestUDPPoolSpreadsOverPeers: two clustered hubs, each holding one edge
// of UDP pool "dns" and a share of the other's (targeting its door):
// flows at either hub spread over both edges, and flows brought to a
// hub's door go to its own edge only, never back to the other hub: one
// hop between hubs at most.
func TestUDPPoolSpreadsOverPeers(t *testing.T) {
	h1, port1, link1, door1 := udpPoolHub(t, "edge1")
	h2, port2, link2, door2 := udpPoolHub(t, "edge2")
	to2, to1 := linkTo(t, link2), linkTo(t, link1)
	if _, err := h1.SetUDPPoolPeers(port1.String(), "dns", []PoolPeer{{Hub: "h2", Via: to2, Target: door2, Members: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.SetUDPPoolPeers(port2.String(), "dns", []PoolPeer{{Hub: "h1", Via: to1, Target: door1, Members: 1}}); err != nil {
		t.Fatal(err)
	}
	// At h1, 10 to each; at h2 its edge holds the 10 that h1 brought to
	// its door already (they are open until idle), so h1's share gets the
	// first 10 and the rest alternate: 15 and 5.
	for _, tc := range []struct {
		at           *net.UDPAddr
		edge1, edge2 int
	}{{port1, 10, 10}, {port2, 15, 5}} {
		count := map[string]int{}
		for i := range 20 {
			_, name := flow(t, tc.at, i)
			count[name]++
		}
		if count["edge1"] != tc.edge1 || count["edge2"] != tc.edge2 {
			t.Fatalf("20 flows at %s went %v, want %d to edge1 and %d to edge2", tc.at, count, tc.edge1, tc.edge2)
		}
	}
	for door, want := range map[string]string{door1: "edge1", door2: "edge2"} {
		a, err := net.ResolveUDPAddr("udp", door)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			if _, name := flow(t, a, 300+i); name != want {
				t.Fatalf("flow %d to the door %s reached %s, want %s (the hub's own edge)", i, door, name, want)
			}
		}
	}
}

// flowStreamEnded matches a UDP flow's stream ending whose target is not
// skip.
func flowStreamEnded(skip string) func(testkit.Record) bool {
	return func(r testkit.Record) bool { return r.Msg == "UDP flow's stream ended" && r.Attrs["target"] != skip }
}

// TestPooledUDPFlowEndStopsCounting: a pooled flow idle past --udp-idle
// has its stream ended, both ways, and it stops counting against its
// member at once: flows that ended weigh nothing on where the next go.
// (Its stream used to stay half open, counting, until the link ended.)
func TestPooledUDPFlowEndStopsCounting(t *testing.T) {
	port := freeUDPAddr(t)
	pooled := func(name string) func(*Config) {
		target := namedUDPEcho(t, name)
		return func(c *Config) {
			c.Remotes = []forward.Forward{{Bind: port.String(), Target: target, UDP: true}}
			c.Pool = "dns"
		}
	}
	// A second of idleness ends a flow: long beside the few milliseconds
	// the flows below take, short for the test.
	p := newTestPair(t, pairConfig{B: pooled("edge1"), A: func(c *Config) { c.UDPIdle = time.Second }})
	remoteListening(t, p.BLog, 1)
	for i := range 3 {
		if _, name := flow(t, port, i); name != "edge1" {
			t.Fatalf("flow %d reached %s with edge1 alone in the pool", i, name)
		}
	}
	p.ALog.WaitN(t, 10*time.Second, "the hub's streams of the three flows to end", 3, flowStreamEnded(""))
	p.BLog.WaitN(t, 10*time.Second, "the edge's streams of the three flows to end", 3, flowStreamEnded(""))

	second := p.AddEdge(t, pooled("edge2"))
	remoteListening(t, second.Log, 1)
	count := map[string]int{}
	for i := range 2 {
		_, name := flow(t, port, 10+i)
		count[name]++
	}
	if count["edge1"] != 1 || count["edge2"] != 1 {
		t.Fatalf("2 flows after edge1's 3 ended went %v, want one to each edge (ended flows count for nothing)", count)
	}
}

// TestUDPPoolDoorFlowEndsWithItsStream: a flow another hub brought to a
// UDP pool's door ends at the door as soon as the stream that brought it
// does (the other hub's session idled out), not after the door's own
// --udp-idle: it stops counting against the edge it went to at once.
func TestUDPPoolDoorFlowEndsWithItsStream(t *testing.T) {
	h2Log := testkit.NewRecorder()
	h1, port1, _, _ := udpPoolHub(t, "edge1", func(c *Config) { c.UDPIdle = time.Second })
	_, _, link2, door2 := udpPoolHub(t, "edge2", func(c *Config) { c.Logger = slog.New(h2Log) }) // --udp-idle: 60 s
	if _, err := h1.SetUDPPoolPeers(port1.String(), "dns", []PoolPeer{{Hub: "h2", Via: linkTo(t, link2), Target: door2, Members: 1}}); err != nil {
		t.Fatal(err)
	}
	// The first flow goes to h1's own edge, the second to h2's share.
	for i, want := range []string{"edge1", "edge2"} {
		if _, name := flow(t, port1, i); name != want {
			t.Fatalf("flow %d at h1 reached %s, want %s", i, name, want)
		}
	}
	// h1's session idles out: the stream to h2's door ends, and the
	// door's session with it, whose stream to edge2 ends too.
	h2Log.Wait(t, 10*time.Second, "the door's stream to edge2 ending", flowStreamEnded(door2))
	h2Log.Wait(t, 10*time.Second, "the door's session ending with its stream", func(r testkit.Record) bool {
		return r.Msg == "UDP session ended with the stream that brought it"
	})
}
