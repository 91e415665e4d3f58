package actors

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// nodePair starts a listening node with ca and a dialling one with cb,
// lets before adjust the dialler's env, connects it, and returns both and
// the listener's address. Both close, and leaks are checked, at the end.
func nodePair(t *testing.T, ca, cb Config, before func(*env)) (a, b *Node, addr string) {
	t.Helper()
	testkit.CheckLeaks(t)
	a, err := NewNode(ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.Serve(ln)
	if b, err = NewNode(cb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if before != nil {
		before(b.env)
	}
	d, err := carriers.NewDialer(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b.Connect(d)
	return a, b, ln.Addr().String()
}

// joinPair is a listening node and a dialling one, linked with key; it
// returns the listener and its address, and the link's id.
func joinPair(t *testing.T, key []byte, log *testkit.Recorder) (*Node, string, engine.LinkID) {
	t.Helper()
	up := make(chan struct{}, 4)
	a, _, addr := nodePair(t, Config{Logger: slog.New(log), Key: key},
		Config{Logger: slog.New(slog.DiscardHandler), Key: key, OnLink: func(ev LinkEvent) {
			if ev.Up {
				up <- struct{}{}
			}
		}}, nil)
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		t.Fatal("no link")
	}
	var id engine.LinkID
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.env.mu.Lock()
		n := len(a.env.seqLinks)
		for k := range a.env.seqLinks {
			id = k
		}
		a.env.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener has %d sequenced links, want 1", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return a, addr, id
}

// join runs a joining dialler's handshake against addr (a dialler
// without the key it does not know the link's).
func join(t *testing.T, addr string, key []byte, id engine.LinkID) *handshakeDone {
	t.Helper()
	return runJoin(dialJoin(t, addr), key, id)
}

// dialJoin dials addr for a join; the connection closes when the test ends.
func dialJoin(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// runJoin runs a joining dialler's handshake on conn; it may run off the
// test's goroutine.
func runJoin(conn net.Conn, key []byte, id engine.LinkID) *handshakeDone {
	hs := &handshaker{
		hello: &engine.Hello{MinVersion: engine.MinVersion, MaxVersion: engine.Version, Role: engine.RoleDialer,
			MaxPayload: engine.DefaultMaxPayload, InitialWindow: engine.DefaultWindow},
		key: key, maxSkew: engine.DefaultMaxSkew, replay: engine.NewReplayCache(16), now: time.Now,
		link: &engine.LinkHello{ID: id, Join: true, Reorder: engine.DefaultReorder},
	}
	return hs.run(conn, 10*time.Second)
}

// TestJoin: a carrier may join a link only with the link's key and id;
// every other join is refused with a reason naming why, and the link goes
// on untouched.
func TestJoin(t *testing.T) {
	key := []byte("the link's key, long enough")
	log := testkit.NewRecorder()
	a, addr, id := joinPair(t, key, log)
	other := id
	other[0] ^= 0xFF
	cases := []struct {
		name string
		key  []byte
		id   engine.LinkID
		want error // nil: joined
		// why the listener logs it refused the join
		logged func(testkit.Record) bool
	}{
		{"wrong key", []byte("another key"), id, engine.ErrAuth, func(r testkit.Record) bool {
			err, _ := r.Attrs["err"].(error)
			return r.Msg == "link handshake failed" && errors.Is(err, engine.ErrKeyMismatch)
		}},
		{"no key", nil, id, engine.ErrAuth, func(r testkit.Record) bool {
			err, _ := r.Attrs["err"].(error)
			return r.Msg == "link handshake failed" && errors.Is(err, engine.ErrNoPeerKey)
		}},
		{"unknown link", key, other, engine.ErrUnknownLink, func(r testkit.Record) bool {
			return r.Msg == "join refused: no such link"
		}},
		{"right key and id", key, id, nil, func(r testkit.Record) bool {
			return r.Msg == "carrier joined the link" && r.Attrs["carriers"] == int64(2)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := join(t, addr, tc.key, tc.id)
			switch {
			case tc.want == nil && res.err != nil:
				t.Fatalf("join refused: %v", res.err)
			case tc.want != nil && !errors.Is(res.err, tc.want):
				t.Fatalf("join: %v, want an error matching %v", res.err, tc.want)
			}
			log.Wait(t, 10*time.Second, "the listener's verdict", tc.logged)
		})
	}
	ls := a.Status().Links
	carriers := 0
	for _, l := range ls {
		if l.Up {
			carriers += l.Carriers
		}
	}
	if carriers < 1 {
		t.Fatalf("the listener's link lost its carrier after the refused joins: %+v", ls)
	}
	if r := a.Stats().refusals.Load(); r < 1 {
		t.Fatalf("refusals counted %d, want the unknown link's at least", r)
	}
}

// TestPeerWithoutSeq: a peer that does not sequence frames (an older
// build) still links, over one carrier whatever --carriers says, and
// carries streams intact.
func TestPeerWithoutSeq(t *testing.T) {
	echo := testkit.Echo(t)
	log := testkit.NewRecorder()
	f, err := forward.ParseForward("127.0.0.1:0:" + echo)
	if err != nil {
		t.Fatal(err)
	}
	a, b, _ := nodePair(t, Config{Logger: slog.New(slog.DiscardHandler)},
		Config{Logger: slog.New(log), Carriers: 3, Forwards: []forward.Forward{f}},
		func(e *env) { e.noSeq = true })
	rec := log.Wait(t, 10*time.Second, "link up", func(r testkit.Record) bool { return r.Msg == "link up" })
	if rec.Attrs["sequenced"] != false {
		t.Fatalf("link up with sequenced=%v, want false", rec.Attrs["sequenced"])
	}
	testkit.EchoRoundTrip(t, testkit.Dial(t, b.ForwardAddrs()[0]), 3, 4<<20)
	for _, l := range a.Status().Links {
		if l.Up && (l.Carriers != 1 || len(l.CarrierBytesIn) != 0) {
			t.Fatalf("listener's link: %d carriers, per-carrier bytes %v; want 1 carrier, none", l.Carriers, l.CarrierBytesIn)
		}
	}
}

// TestJoinBeforeItsLink: a join whose link id is not known yet (the link's
// own handshake is still being reported) is looked up again, and joins
// once the id is there.
func TestJoinBeforeItsLink(t *testing.T) {
	key := []byte("k, but sixteen bytes long")
	log := testkit.NewRecorder()
	a, addr, id := joinPair(t, key, log)
	late := id
	late[0] ^= 0x5A
	done := make(chan *handshakeDone, 1)
	conn := dialJoin(t, addr)
	go func() { done <- runJoin(conn, key, late) }()
	log.Wait(t, 10*time.Second, "the join looked up in vain", func(r testkit.Record) bool {
		return r.Msg == "join for a link not known yet; looking again"
	})
	if !a.env.registerLink(late, a.env.seqLink(id)) { // the same Link, now under a second id too
		t.Fatal("could not register the late id")
	}
	if res := <-done; res.err != nil {
		t.Fatalf("join refused: %v", res.err)
	}
	log.Wait(t, 10*time.Second, "the carrier joined", func(r testkit.Record) bool {
		return r.Msg == "carrier joined the link" && r.Attrs["carriers"] == int64(2)
	})
	a.env.unregisterLink(late, a.env.seqLink(id))
}
