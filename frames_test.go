package sockmux_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// TestHelloOffers: what a Session's HELLO offers a peer, played by hand.
// A client that could never add a carrier or resume its link does not
// sequence it (its frames are not kept for resending) and takes frames of
// 256 KiB; one that sequences keeps the default 64 KiB, which its resend
// and reorder limits count in; a server offers both, and the least of the
// two HELLOs is what a link uses.
func TestHelloOffers(t *testing.T) {
	testkit.CheckLeaks(t)
	redial := func(context.Context) (net.Conn, error) { return nil, errors.New("no second carrier here") }
	for _, tc := range []struct {
		name       string
		server     bool
		cfg        func(*sockmux.Config)
		maxPayload uint32
		seq        bool
	}{
		{"client without a Dialer", false, func(*sockmux.Config) {}, 256 << 10, false},
		{"client with a Dialer", false, func(c *sockmux.Config) { c.Dialer = redial }, engine.DefaultMaxPayload, true},
		{"client with a Dialer, no resuming", false, func(c *sockmux.Config) {
			c.Dialer, c.ResumeWindow = redial, -1
		}, 256 << 10, false},
		{"client with a Dialer, no resuming, two carriers", false, func(c *sockmux.Config) {
			c.Dialer, c.ResumeWindow, c.Carriers = redial, -1, 2
		}, engine.DefaultMaxPayload, true},
		{"server", true, func(*sockmux.Config) {}, 256 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sockmux.DefaultConfig()
			tc.cfg(cfg)
			p := helloPeer(t, tc.server, cfg, wirepeer.Options{Seq: true})
			if got := p.Remote.MaxPayload; got != tc.maxPayload {
				t.Errorf("HELLO's max payload %d, want %d", got, tc.maxPayload)
			}
			if got := p.Remote.Capabilities&engine.CapSeq != 0; got != tc.seq {
				t.Errorf("HELLO offers CapSeq: %v, want %v", got, tc.seq)
			}
		})
	}
}

// helloPeer runs a Session (a Server when server is set, else a Client)
// with cfg against a peer played by hand, until the HELLOs are exchanged.
func helloPeer(t *testing.T, server bool, cfg *sockmux.Config, o wirepeer.Options) *wirepeer.Peer {
	t.Helper()
	started := make(chan *sockmux.Session, 1)
	run := func(c net.Conn) {
		var s *sockmux.Session
		if server {
			s, _ = sockmux.Server(c, cfg)
		} else {
			s, _ = sockmux.Client(c, cfg)
		}
		started <- s
	}
	var p *wirepeer.Peer
	if server {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				run(c)
			} else {
				started <- nil
			}
		}()
		p = wirepeer.Connect(t, ln.Addr().String(), o)
	} else {
		l := wirepeer.Listen(t)
		c, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		go run(c)
		if p, err = l.Accept(10*time.Second, o); err != nil { // hang guard
			t.Fatal(err)
		}
		if err := p.Handshake(); err != nil {
			t.Fatal(err)
		}
	}
	s := <-started
	if s == nil {
		t.Fatal("the session did not start")
	}
	t.Cleanup(func() { s.Close() })
	return p
}

// TestFramesWithinPeerLimit: a client that takes 256 KiB frames, linked to
// a peer that takes the default 64 KiB, sends what it is given in frames
// the peer takes; every byte arrives, in order.
func TestFramesWithinPeerLimit(t *testing.T) {
	testkit.CheckLeaks(t)
	l := wirepeer.Listen(t)
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		s   *sockmux.Session
		err error
	}
	started := make(chan res, 1)
	go func() {
		s, err := sockmux.Client(c, nil)
		started <- res{s, err}
	}()
	p, err := l.Accept(10*time.Second, wirepeer.Options{}) // hang guard
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handshake(); err != nil {
		t.Fatal(err)
	}
	r := <-started
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.s.Close() })
	st, err := r.s.Open(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200 << 10 // within the initial window: no CREDIT needed
	msg := make([]byte, n)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	// One large write, then more, so that the pipe holds several frames'
	// worth when the stream takes them.
	go func() {
		st.Write(msg[:150<<10])
		st.Write(msg[150<<10:])
	}()
	var got []byte
	for len(got) < n {
		f, err := p.ReadFrame(10 * time.Second) // hang guard; a frame above 64 KiB fails it
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		if f.Type != engine.TypeData {
			continue
		}
		if len(f.Payload) > engine.DefaultMaxPayload {
			t.Fatalf("a DATA frame of %d bytes: the peer takes %d", len(f.Payload), engine.DefaultMaxPayload)
		}
		got = append(got, f.Payload...)
	}
	if string(got) != string(msg) {
		t.Fatal("the bytes arrived changed")
	}
}
