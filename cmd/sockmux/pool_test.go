package main

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestPoolCommands: a hub with --remote-bind-addr and two edges that ask
// it for the same all-address -R under one --pool, as a user runs them:
// the port is bound on the hub's address, and 20 connections held open
// there are spread evenly over the two edges' targets.
func TestPoolCommands(t *testing.T) {
	testkit.CheckLeaks(t)
	link, port := testkit.FreeAddr(t), testkit.FreeAddr(t)
	_, portNum, _ := net.SplitHostPort(port)
	hub := runBG(t, "listen", "--drain", "0s", "--remote-bind-addr", "127.0.0.11", link)
	waitListening(t, link)
	for _, name := range []string{"edge1", "edge2"} {
		target := testkit.Serve(t, func(c net.Conn) {
			c.Write([]byte(name))
			io.Copy(io.Discard, c)
		})
		edge := runBG(t, "connect", "--drain", "0s", "--pool", "web", "-R", "*:"+portNum+":"+target, link)
		waitLog(t, edge, `msg="reverse forward listening"`)
	}
	waitLog(t, hub, "members=2")
	count := map[string]int{}
	for range 20 {
		c, err := net.Dial("tcp", "127.0.0.11:"+portNum)
		if err != nil {
			t.Fatalf("the pooled port on the hub's --remote-bind-addr: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("reading the edge's name: %v", err)
		}
		count[string(b)]++
	}
	if count["edge1"] != 10 || count["edge2"] != 10 {
		t.Fatalf("20 held connections went %v, want 10 to each edge", count)
	}
}
