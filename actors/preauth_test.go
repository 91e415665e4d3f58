package actors

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/preauth"
	"github.com/sockmux/sockmux/internal/testkit"
)

// newSide starts a node with cfg that reports its link events; it is
// closed by t.Cleanup. A failed handshake is not redialled during the
// test, and a carrier that drops takes the link down (no resumption), so
// that a carrier the gate wrongly closed shows.
func newSide(t *testing.T, cfg Config) *side {
	t.Helper()
	s := &side{log: testkit.NewRecorder(), up: make(chan LinkEvent, 16)}
	cfg.Logger = slog.New(s.log)
	cfg.OnLink = func(ev LinkEvent) { s.up <- ev }
	cfg.Backoff, cfg.ResumeWindow = time.Hour, -1
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	s.n = n
	return s
}

// waitAllClosed fails unless the server closes every conn by deadline
// (what it sends before, a HELLO, is read and dropped). The deadline is
// a limit for a broken test, not a timing assertion.
func waitAllClosed(t *testing.T, conns []net.Conn, deadline time.Time) {
	t.Helper()
	for i, c := range conns {
		_ = c.SetReadDeadline(deadline)
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("silent connection %d of %d: the server did not close it: %v", i, len(conns), err)
		}
	}
}

// closeAll closes every conn.
func closeAll(conns ...[]net.Conn) {
	for _, cs := range conns {
		for _, c := range cs {
			c.Close()
		}
	}
}

// waitLinksEnded waits until every Link actor n has now has stopped. A
// test ends its links this way before the node closes: Shutdown waits up
// to 3 s for a Link that stops on its own at the same moment, which only
// slows the test down.
func waitLinksEnded(t *testing.T, n *Node) {
	t.Helper()
	n.env.mu.Lock()
	var dones []chan struct{}
	for _, ch := range n.env.linkDone {
		dones = append(dones, ch)
	}
	n.env.mu.Unlock()
	limit := time.After(20 * time.Second)
	for _, ch := range dones {
		select {
		case <-ch:
		case <-limit:
			t.Fatalf("links still running: %d", len(dones))
		}
	}
}

// echoOver opens a stream from b to an echo server and checks a round
// trip through it: the link carries.
func echoOver(t *testing.T, b *side, echo string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := b.n.DialStream(ctx, echo)
	if err != nil {
		t.Fatalf("stream over the link: %v", err)
	}
	defer c.Close()
	go c.Write([]byte("ping"))
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo over the link: %q, %v", buf, err)
	}
}

// flood is how many silent connections a test opens at once: more than
// a gate holds.
const flood = 300

// TestLinkSilentFlood: a real peer gets its link while 300 silent TCP
// connections sit on the link listener, tcp:// or tls://, with first-byte
// and handshake timeouts so long that only evicting idle connections can
// make room. On tcp://, the carrier gives its slot back once its
// handshake is done, and a second flood evicts silent connections only:
// the link still carries.
func TestLinkSilentFlood(t *testing.T) {
	const room = preauth.DefaultMaxPending
	long := preauth.Config{MaxPerSource: room, FirstByteTimeout: time.Minute, Timeout: time.Minute}
	for _, kind := range []string{"tcp", "tls"} {
		t.Run(kind, func(t *testing.T) {
			testkit.CheckLeaks(t)
			echo := testkit.Echo(t)
			a := newSide(t, Config{HandshakeTimeout: time.Minute})
			b := newSide(t, Config{})
			var gate *preauth.Gate // the link listener's, on tcp://
			var ln net.Listener
			var d carriers.Dialer
			var err error
			switch kind {
			case "tcp":
				if ln, err = carriers.Listen("tcp://127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
				pl := preauth.Listen(ln, long)
				gate, ln = pl.Gate(), pl
				d, err = carriers.NewDialer("tcp://" + ln.Addr().String())
			case "tls":
				tc := carriers.TLSConfig{StateDir: t.TempDir()}
				fp, err := tc.ServerFingerprint()
				if err != nil {
					t.Fatal(err)
				}
				if ln, err = carriers.Listen("tls://127.0.0.1:0", carriers.WithTLS(tc), carriers.WithPreauth(long), carriers.WithLogger(nil)); err != nil {
					t.Fatal(err)
				}
				d, err = carriers.NewDialer("tls://"+ln.Addr().String(), carriers.WithTLS(carriers.TLSConfig{Fingerprint: fp}))
			}
			if err != nil {
				t.Fatal(err)
			}
			a.n.Serve(ln)
			deadline := time.Now().Add(30 * time.Second)
			conns := testkit.SilentConns(t, ln.Addr().String(), flood)
			// Once the oldest beyond the room are closed, all have been
			// admitted and the gate is full of silent connections.
			waitAllClosed(t, conns[:flood-room], deadline)
			b.n.Connect(d)
			a.waitUp(t)
			b.waitUp(t)
			echoOver(t, b, echo)
			if gate != nil {
				// The carrier took the slot of the oldest silent
				// connection left, and has given it back.
				if st := gate.Stats(); st.Evicted != flood-room+1 || st.Pending != room-1 || st.FirstByteTimeouts+st.Timeouts+st.Refused != 0 {
					t.Fatalf("gate %+v; want %d evicted, %d pending, nothing timed out or refused", st, flood-room+1, room-1)
				}
				more := testkit.SilentConns(t, ln.Addr().String(), flood)
				// The 255 silent connections left go first, then the
				// oldest new ones beyond the room; never the carrier.
				waitAllClosed(t, more[:flood-room], deadline)
				if st := gate.Stats(); st.Evicted != 2*flood-room {
					t.Fatalf("gate %+v; want %d evicted: silent connections only", st, 2*flood-room)
				}
				echoOver(t, b, echo)
				closeAll(more)
			}
			b.n.Close()
			closeAll(conns)
			waitLinksEnded(t, a.n)
		})
	}
}

// TestServeGatesTCP: Serve puts a TCP link listener behind a gate with
// the default limits, the node's handshake timeout as its own (plus the
// grace), so that a 33rd silent connection from one address evicts the
// first at once.
func TestServeGatesTCP(t *testing.T) {
	testkit.CheckLeaks(t)
	a := newSide(t, Config{})
	ln, err := carriers.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.n.Serve(ln)
	var gate *preauth.Gate
	a.n.mu.Lock()
	for _, l := range a.n.listeners {
		if pl, ok := l.(*preauth.Listener); ok {
			gate = pl.Gate()
		}
	}
	a.n.mu.Unlock()
	if gate == nil {
		t.Fatal("Serve did not gate a TCP listener")
	}
	want := preauth.Config{MaxPending: preauth.DefaultMaxPending, MaxPerSource: preauth.DefaultMaxPerSource,
		FirstByteTimeout: preauth.DefaultFirstByteTimeout, Timeout: a.n.env.cfg.HandshakeTimeout + handshakeGrace, Logger: a.n.env.log}
	if got := gate.Config(); got != want {
		t.Fatalf("gate config %+v, want %+v", got, want)
	}
	conns := testkit.SilentConns(t, ln.Addr().String(), preauth.DefaultMaxPerSource+1)
	waitAllClosed(t, conns[:1], time.Now().Add(20*time.Second))
	if st := gate.Stats(); st.Evicted != 1 {
		t.Fatalf("gate %+v; want the first silent connection evicted", st)
	}
	closeAll(conns)
	waitLinksEnded(t, a.n)
}
