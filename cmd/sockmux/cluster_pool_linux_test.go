//go:build linux

package main

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestClusterPool: two edges of one pool, linked to different hubs of
// three, are reached from every hub, connections spread over both: at a
// hub holding one of them (its own edge and the other hub's) and at the
// hub holding neither (the two hubs' shares). When a hub is killed
// (SIGKILL) its edge fails over, and both remaining hubs reach both
// edges again.
func TestClusterPool(t *testing.T) {
	testkit.CheckLeaks(t) // the edges', in this process; the hubs are processes
	key := keyFile(t, "the hubs' and edges' link key, 32 bytes or more")
	clusterKey := keyFile(t, "the control plane's cluster key, 32 bytes or more")
	_, port := splitPort(t, testkit.FreeAddr(t))
	h1 := startHub(t, 1, key, clusterKey, port)
	h2 := startHub(t, 2, key, clusterKey, port, h1)
	h3 := startHub(t, 3, key, clusterKey, port, h1)
	edge := func(name string, links ...string) *syncBuffer {
		target := testkit.Serve(t, func(c net.Conn) {
			c.Write([]byte(name))
			io.Copy(io.Discard, c)
		})
		args := []string{"connect", "--drain", "0s", "--resume-window", "0", "--key-file", key, "--pool", "web", "-R", "*:" + port + ":" + target}
		log := runBG(t, append(args, links...)...)
		waitLog(t, log, `msg="reverse forward listening"`)
		return log
	}
	edge1 := edge("edge1", h1.link, h3.link) // fails over to h3
	edge("edge2", h2.link)
	h1.proc.waitLine(t, "h1 sharing h2's edge", `msg="cluster: bridging a bind of another hub"`, "hub="+h2.control)
	h2.proc.waitLine(t, "h2 sharing h1's edge", `msg="cluster: bridging a bind of another hub"`, "hub="+h1.control)
	h3.proc.waitLine(t, "h3 sharing h1's edge", `msg="cluster: bridging a bind of another hub"`, "hub="+h1.control)
	h3.proc.waitLine(t, "h3 sharing h2's edge", `msg="cluster: bridging a bind of another hub"`, "hub="+h2.control)
	for _, h := range []*hubProc{h1, h3} { // one holding edge1, one holding none
		spreadAt(t, h)
	}

	if err := h1.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitLine(t, edge1, `msg="link up"`, "addr=tcp://"+h3.link)
	h3.proc.waitLine(t, "edge1 in h3's pool", `msg="reverse forward joined its pool"`)
	h2.proc.waitLine(t, "h2 sharing edge1 at h3", `msg="cluster: bridging a bind of another hub"`, "hub="+h3.control)
	for _, h := range []*hubProc{h2, h3} {
		spreadAt(t, h)
	}
}

// splitPort is addr's host and port.
func splitPort(t testing.TB, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// spreadAt holds 20 connections open to the pool's port at hub h and
// checks that both edges got some; they are closed before it returns.
func spreadAt(t *testing.T, h *hubProc) {
	t.Helper()
	addr := net.JoinHostPort(h.host, h.port)
	count := map[string]int{}
	for range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("reading an edge's name through %s: %v", addr, err)
		}
		count[string(b)]++
	}
	t.Logf("20 held connections to %s went %v", addr, count)
	if count["edge1"] == 0 || count["edge2"] == 0 {
		t.Fatalf("20 held connections to %s went %v, want some to each edge", addr, count)
	}
}
