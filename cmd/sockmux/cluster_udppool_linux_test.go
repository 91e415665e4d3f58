//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestClusterUDPPool: two edges of one UDP pool, linked to different
// hubs of three, are reached from every hub, client flows spread over
// both: at a hub holding one of them (its own edge and the other hub's
// share, carried to that hub's door) and at the hub holding neither (the
// two hubs' shares). When a hub is killed (SIGKILL) its edge fails over,
// and both remaining hubs reach both edges again.
func TestClusterUDPPool(t *testing.T) {
	testkit.CheckLeaks(t) // the edges', in this process; the hubs are processes
	key := keyFile(t, "the hubs' and edges' link key, 32 bytes or more")
	clusterKey := keyFile(t, "the control plane's cluster key, 32 bytes or more")
	_, port := splitPort(t, udpPort(t))
	h1 := startHub(t, 1, key, clusterKey, port)
	h2 := startHub(t, 2, key, clusterKey, port, h1)
	h3 := startHub(t, 3, key, clusterKey, port, h1)
	edge := func(name string, links ...string) *syncBuffer {
		target := namedUDPEcho(t, name)
		args := []string{"connect", "--drain", "0s", "--resume-window", "0", "--key-file", key, "--pool", "dns", "-R", "*:" + port + "/udp:" + target}
		log := runBG(t, append(args, links...)...)
		waitLog(t, log, `msg="reverse forward listening"`)
		return log
	}
	edge1 := edge("edge1", h1.link, h3.link) // fails over to h3
	edge("edge2", h2.link)
	sharing := func(at, of *hubProc, what string) {
		at.proc.waitLine(t, what, `msg="cluster: bridging a bind of another hub"`, "pool=dns", "hub="+of.control)
	}
	sharing(h1, h2, "h1 sharing h2's edge")
	sharing(h2, h1, "h2 sharing h1's edge")
	sharing(h3, h1, "h3 sharing h1's edge")
	sharing(h3, h2, "h3 sharing h2's edge")
	for _, h := range []*hubProc{h1, h3} { // one holding edge1, one holding none
		udpSpreadAt(t, h, 20)
	}

	if err := h1.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitLine(t, edge1, `msg="link up"`, "addr=tcp://"+h3.link)
	h3.proc.waitLine(t, "edge1 in h3's pool", `msg="reverse forward joined its pool"`)
	sharing(h2, h3, "h2 sharing edge1 at h3")
	// The flows of earlier rounds still count against the members they
	// went to, those other hubs brought to a door too (a flow ends when
	// idle, --udp-idle): at h2 edge2 holds h1's and h3's, so the first new
	// flows all go to h3's share, fewest open streams first, and at h3
	// edge1 then holds those; 40 flows reach both edges all the same.
	for _, h := range []*hubProc{h2, h3} {
		udpSpreadAt(t, h, 40)
	}
}

// namedUDPEcho is testkit.NamedUDPEcho: it says which edge's target
// answered.
func namedUDPEcho(t testing.TB, name string) string { return testkit.NamedUDPEcho(t, name) }

// udpSpreadAt makes n client flows (each its own socket) to the pool's
// port at hub h, two datagrams each, and checks that every datagram's
// echo comes back whole, that both of a flow's datagrams reach one edge,
// and that both edges got some flows.
func udpSpreadAt(t *testing.T, h *hubProc, n int) {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", net.JoinHostPort(h.host, h.port))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for i := range n {
		c, err := net.DialUDP("udp", nil, a)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		first := namedEchoOnce(t, c, []byte(fmt.Sprintf("flow %d, first", i)))
		if second := namedEchoOnce(t, c, bytes.Repeat([]byte{byte(i)}, 1200)); second != first {
			t.Fatalf("flow %d through %s: its datagrams reached %s, then %s", i, a, first, second)
		}
		count[first]++
	}
	t.Logf("%d flows to %s went %v", n, a, count)
	if count["edge1"] == 0 || count["edge2"] == 0 {
		t.Fatalf("%d flows to %s went %v, want some to each edge", n, a, count)
	}
}

// namedEchoOnce sends msg until a namedUDPEcho's echo of it comes back,
// and returns the name that answered. This is UDP: a datagram may be
// lost, and a late echo of an earlier try (or of the flow's earlier
// datagram) is skipped.
func namedEchoOnce(t *testing.T, c *net.UDPConn, msg []byte) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	for range 80 {
		c.Write(msg)
		c.SetReadDeadline(time.Now().Add(250 * time.Millisecond)) // when to send again
		for {
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			if name, echo, ok := bytes.Cut(buf[:n], []byte("|")); ok && bytes.Equal(echo, msg) {
				return string(name)
			}
		}
	}
	t.Fatalf("no echo of a %d-byte datagram through %s", len(msg), c.RemoteAddr())
	return ""
}
