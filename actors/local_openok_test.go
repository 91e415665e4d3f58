package actors

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// acceptingNode is a node whose AcceptStream hands each stream the peer
// opens to serve (on a goroutine of its own, as an application would),
// listening for links on a loopback port it returns.
func acceptingNode(t *testing.T, serve func(c *LocalConn)) string {
	t.Helper()
	node, err := NewNode(Config{Logger: slog.New(slog.DiscardHandler),
		AcceptStream: func(c *LocalConn) error { go serve(c); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			node.ServeConn(c)
		}
	}()
	return ln.Addr().String()
}

// TestLocalOpenOKHeld: a stream the library accepts holds its OPEN_OK
// back until its first frame, so the two leave together, but never past
// the moment its application waits to read: a peer that waits for the
// OPEN_OK before it sends (a SOCKS client waiting for its reply) must get
// it, or both would wait for ever. The frames of the stream, in order, as
// the peer reads them, for each thing the application does first.
func TestLocalOpenOKHeld(t *testing.T) {
	testkit.CheckLeaks(t)
	for _, tc := range []struct {
		name  string
		serve func(c *LocalConn)
		// request: the peer sends this once it has the OPEN_OK.
		request string
		want    []engine.Type
	}{
		{"reads first", func(c *LocalConn) {
			b := make([]byte, 4)
			if _, err := io.ReadFull(c, b); err == nil {
				c.Write(b)
			}
			c.Close()
		}, "ping", []engine.Type{engine.TypeOpenOK, engine.TypeData, engine.TypeFin}},
		{"writes first", func(c *LocalConn) {
			c.Write([]byte("hello"))
			c.CloseWrite()
		}, "", []engine.Type{engine.TypeOpenOK, engine.TypeData, engine.TypeFin}},
		{"closes first", func(c *LocalConn) {
			c.Close()
		}, "", []engine.Type{engine.TypeOpenOK, engine.TypeFin}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wirepeer.Connect(t, acceptingNode(t, tc.serve), wirepeer.Options{})
			id := p.NextID()
			if err := p.Open(id, "app", nil); err != nil {
				t.Fatal(err)
			}
			var got []engine.Type
			for len(got) < len(tc.want) {
				f, _, err := p.Expect(10*time.Second, func(f *wirepeer.Frame) bool { return f.Stream == id }) // hang guard
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, f.Type)
				if f.Type == engine.TypeOpenOK && tc.request != "" {
					if err := p.Data(id, []byte(tc.request)); err != nil {
						t.Fatal(err)
					}
				}
				if f.Type == engine.TypeRst || f.Type == engine.TypeFin {
					break
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("the stream's frames: %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("the stream's frames: %v, want %v", got, tc.want)
				}
			}
		})
	}
}
