package sockmux_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestShareTunnel: `sockmux share --upstream tunnel:HUB,TARGET` as a
// program runs it: the share's upstream is a stream of a Peer's link to a
// hub, keyed, and what one client sends reaches the upstream (an echo)
// and comes back to every client, once.
func TestShareTunnel(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	hub, hubAddr := servingPeer(t, &sockmux.PeerConfig{Key: key})

	if _, err := sockmux.NewShare(sockmux.ShareConfig{Listen: "127.0.0.1:0", Upstream: "tunnel:" + hubAddr}); !errors.Is(err, sockmux.ErrBadUpstream) {
		t.Fatalf("a tunnel: with no target = %v, want ErrBadUpstream", err)
	}
	s, err := sockmux.NewShare(sockmux.ShareConfig{Listen: "127.0.0.1:0",
		Upstream: "tunnel:" + hubAddr + "," + testkit.Echo(t), Replay: 4, Tunnel: sockmux.PeerConfig{Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second)) // hang guard
		clients = append(clients, c)
	}
	// The second client may join before the echo comes back or after it:
	// with Replay it gets the echo either way, once.
	if _, err := clients[0].Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		got := make([]byte, 4)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
			t.Fatalf("client %d read %q, %v; want the echo of ping", i, got, err)
		}
	}
	if st := s.Stats(); st.ToUpstream != 4 || st.FromUpstream != 4 {
		t.Fatalf("share counted %d bytes to and %d from the upstream, want 4 and 4", st.ToUpstream, st.FromUpstream)
	}
	for _, c := range clients {
		c.Close()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hub.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.CheckLeaks(t)
}
