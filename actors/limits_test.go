package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestMaxStreamsCountsOpenOnly: a stream that has ended on the wire (the
// peer reset it) while its actor still waits for a dial no longer counts
// against --max-streams.
func TestMaxStreamsCountsOpenOnly(t *testing.T) {
	release := make(chan struct{})
	dials := make(chan string, 4)
	target := testkit.FreeAddr(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, target)},
		A: func(c *Config) {
			c.MaxStreams = 1
			// A dial that outlives its stream: it ignores cancellation
			// until the test ends.
			c.dialTarget = func(ctx context.Context, addr string) (net.Conn, error) {
				dials <- addr
				<-release
				return nil, errors.New("released")
			}
		}})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	first := testkit.Dial(t, p.B.ForwardAddrs()[0])
	<-dials
	// The client resets: B resets the stream, and A's stream ends on the
	// wire with its dial still out.
	_ = first.SetLinger(0)
	first.Close()
	p.ALog.Wait(t, 10*time.Second, "A's stream reset by the peer", func(r testkit.Record) bool { return r.Msg == "stream reset by peer" })
	second := testkit.Dial(t, p.B.ForwardAddrs()[0])
	defer second.Close()
	select {
	case <-dials:
	case <-time.After(10 * time.Second): // hang guard
		for _, r := range p.ALog.Records() {
			if r.Msg == "stream refused" {
				t.Fatalf("second stream refused although the first ended: %v", r.Attrs)
			}
		}
		t.Fatal("the second stream never reached A's dial")
	}
}

// TestMaxBinds: past --max-binds a peer's BIND is refused with a reason
// that names the limit; those within it listen.
func TestMaxBinds(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{
		A: func(c *Config) { c.MaxBinds = 2 },
		B: func(c *Config) {
			for range 3 {
				c.Remotes = append(c.Remotes, forward.Forward{Bind: testkit.FreeAddr(t), Target: echo})
			}
		}})
	rec := p.BLog.Wait(t, 10*time.Second, "the third -R refused", func(r testkit.Record) bool {
		return r.Msg == "reverse forward refused by the peer"
	})
	if reason := fmt.Sprint(rec.Attrs["reason"]); !strings.Contains(reason, "--max-binds") {
		t.Fatalf("refusal reason %q does not name --max-binds", reason)
	}
	remoteListening(t, p.BLog, 2)
	if n := p.A.Stats().refusals.Load(); n != 1 {
		t.Fatalf("A refused %d BINDs, want 1", n)
	}
}

// TestRefusalLogsRateLimited: a flood of refused OPENs is counted in full
// but logged once per interval, not once each.
func TestRefusalLogsRateLimited(t *testing.T) {
	const n = 50
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, "10.255.255.1:9")}}) // not loopback: refused
	for range n {
		if err := testkit.DialClosed(t, p.B.ForwardAddrs()[0].String()); !testkit.IsClosed(err) {
			t.Fatal(err)
		}
	}
	waitFor(t, "every refusal counted", func() bool { return p.A.Stats().refusals.Load() == n })
	lines := 0
	for _, r := range p.ALog.Records() {
		if r.Msg == "stream refused" {
			lines++
		}
	}
	if lines < 1 || lines > 2 {
		t.Fatalf("%d log lines for %d refusals, want 1 (2 if the interval turned)", lines, n)
	}
}

// TestClientPastMaxStreamsReset: a forward's client that gets no stream
// because this side's own limit is reached is reset, not closed cleanly (a
// clean end would say its connection ran its course), and the refusal is
// counted.
func TestClientPastMaxStreamsReset(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}, B: func(c *Config) { c.MaxStreams = 1 }})
	first := testkit.Dial(t, p.B.ForwardAddrs()[0])
	if _, err := first.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil { // the one stream is open, and stays so
		t.Fatal(err)
	}
	if err := testkit.DialClosed(t, p.B.ForwardAddrs()[0].String()); !testkit.IsReset(err) {
		t.Fatalf("the client past the stream limit got %v; want its connection reset", err)
	}
	if n := p.B.Stats().refusals.Load(); n != 1 {
		t.Errorf("%d refusals counted; want the one client past the limit", n)
	}
}
