//go:build linux

package main

import (
	"net"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestClusterUDPBind: an edge's UDP -R for all addresses, made to one hub
// of two, echoes datagrams at both: the other hub bridges it as a UDP
// forward over its link to the holder.
func TestClusterUDPBind(t *testing.T) {
	testkit.CheckLeaks(t) // the edge's, in this process; the hubs are processes
	key := keyFile(t, "the hubs' and edges' link key, 32 bytes or more")
	clusterKey := keyFile(t, "the control plane's cluster key, 32 bytes or more")
	_, port, _ := net.SplitHostPort(udpPort(t))
	h1 := startHub(t, 1, key, clusterKey, port)
	h2 := startHub(t, 2, key, clusterKey, port, h1)
	echo := testkit.NewUDPEcho(t)
	edge := runBG(t, "connect", "--drain", "0s", "--key-file", key, "-R", "*:"+port+"/udp:"+echo.Addr, h1.link)
	waitLog(t, edge, `msg="reverse forward listening"`)
	h2.proc.waitLine(t, "bridging h1's UDP bind", `msg="cluster: bridging a bind of another hub"`,
		"listen="+net.JoinHostPort(h2.host, port)+"/udp", "hub="+h1.control)
	for _, h := range []*hubProc{h1, h2} {
		a, err := net.ResolveUDPAddr("udp", net.JoinHostPort(h.host, port))
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialUDP("udp", nil, a)
		if err != nil {
			t.Fatal(err)
		}
		udpEchoOnce(t, c, []byte("a datagram through "+h.host))
		c.Close()
	}
	if n := echo.Peers(); n != 2 {
		t.Fatalf("the echo saw %d client addresses, want 2 (the holder's socket for h1's client, another for h2's bridged one)", n)
	}
}
