package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/internal/testkit"
)

// testDoor is a hub door on loopback, served by a node of its own, whose
// onLost hook reports on lost; both are closed at cleanup.
func testDoor(t testing.TB) (d *hubDoor, lost chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d = &hubDoor{ln: ln, key: make([]byte, 32), done: make(chan struct{})}
	lost = make(chan struct{}, 1)
	d.onLost(func() { lost <- struct{}{} })
	n, err := sockmux.NewPeer(&sockmux.PeerConfig{})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close(); n.Close() })
	if err := d.serve(n); err != nil {
		t.Fatal(err)
	}
	return d, lost
}

// TestHubDoorLost: a door whose listener ends while the hub runs (the
// node serving it stays up) tells the member (onLost), once the accept
// loop has ended; a door closed as the hub stops does not.
func TestHubDoorLost(t *testing.T) {
	testkit.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	d, lost := testDoor(t)
	d.ln.Close() // not d.close: the listener ends under the door
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("the door's listener ended and the member was not told")
	}

	// close returns once the accept loop has ended, which tells lost
	// before it ends: nothing more can come.
	d, lost = testDoor(t)
	d.close()
	select {
	case <-lost:
		t.Fatal("a door closed as the hub stops told the member its listener was lost")
	default:
	}
}
