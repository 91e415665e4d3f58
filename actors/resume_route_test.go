package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestResumingLinkGetsNoNewStreams: two peers dial one listener; the newer
// one vanishes without a word (its link waits to be resumed). The
// listener's -L connections go to the live link, not to the one waiting.
func TestResumingLinkGetsNoNewStreams(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{AForwards: []forward.Forward{fwd(t, echo)},
		A: func(c *Config) { c.ResumeWindow = time.Hour }})
	// A second peer, C, dials A through a proxy that can be cut, after B:
	// its link is A's newest.
	proxy := testkit.NewProxy(t, p.LinkAddr)
	dialingNode(t, proxy.Addr(), Config{Logger: slog.New(testkit.NewRecorder()), ResumeWindow: time.Hour, Backoff: time.Hour})
	p.ALog.WaitN(t, 10*time.Second, "both links up", 2, func(r testkit.Record) bool { return r.Msg == "link up" })
	proxy.Refuse(true)
	proxy.Cut()
	p.ALog.Wait(t, 10*time.Second, "C's link waiting to resume", func(r testkit.Record) bool {
		return r.Msg == "link lost its last carrier; waiting to resume it"
	})
	for i := range 4 {
		conn := testkit.Dial(t, p.A.ForwardAddrs()[0])
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // hang guard: a stream sent to C's link would wait an hour
		if err := testkit.EchoCheck(conn, uint64(i), 64<<10); err != nil {
			t.Fatalf("connection %d through the listener's -L: %v", i, err)
		}
	}
}

// dialingNode starts a node with cfg that keeps a link to addr; it is
// closed when the test ends.
func dialingNode(t testing.TB, addr string, cfg Config) *Node {
	t.Helper()
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	d, err := carriers.NewDialer(addr)
	if err != nil {
		t.Fatal(err)
	}
	n.Connect(d)
	return n
}
