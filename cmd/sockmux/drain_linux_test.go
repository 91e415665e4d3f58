//go:build linux

package main

import (
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestSecondSignalEndsDrain: the first SIGINT starts the drain (an hour
// here) with a stream still open; a second one ends it now, as in most
// servers: the process exits, and the stream's client sees a reset, not a
// clean end.
func TestSecondSignalEndsDrain(t *testing.T) {
	link, fwd := testkit.FreeAddr(t), testkit.FreeAddr(t)
	got := make(chan struct{}, 1)
	held := testkit.Serve(t, func(c net.Conn) {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			got <- struct{}{}
		}
		_, _ = io.Copy(io.Discard, c)
	})
	runBG(t, "listen", "--drain", "0s", link)
	waitListening(t, link)
	c := startChild(t, nil, "connect", "--drain", "1h", "-L", fwd+":"+held, link)
	c.waitLine(t, "the link up", `msg="link up"`)
	conn, err := net.Dial("tcp", fwd)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("a stream that stays open")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got: // the stream is open end to end
	case <-time.After(10 * time.Second):
		t.Fatal("the stream's bytes never reached its target")
	}
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(c.cmd.Process.Signal(os.Interrupt))
	c.waitLine(t, "the drain begun", `msg="shutting down"`, "drain=1h")
	check(c.cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-c.exited:
		c.exited <- err
	case <-time.After(20 * time.Second): // a guard: the drain is an hour
		t.Fatalf("a second SIGINT did not end the drain:\n%s", c.log.String())
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
	if _, err := conn.Read(make([]byte, 1)); !testkit.IsReset(err) {
		t.Fatalf("the open stream's client got %v; want a reset", err)
	}
}
