package actors

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// hub is one listening node of a failover test, and the dialer that
// reaches it.
type hub struct {
	node *Node
	log  *testkit.Recorder
	addr carriers.Dialer
}

// newNode starts a node with cfg, closed when the test ends: after the
// hubs started later, so that a hub never closes just as its accepted
// link stops by itself (the hub's Shutdown would wait for the Link's
// answer the while its timeout lasts).
func newNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// startHubs starts n listening nodes over carrier, with cfg; the dialers
// that reach them log to dialLog.
func startHubs(t *testing.T, n int, carrier string, cfg Config, dialLog *slog.Logger) []hub {
	t.Helper()
	hubs := make([]hub, n)
	for i := range hubs {
		h := &hubs[i]
		h.log = testkit.NewRecorder()
		c := cfg
		c.Logger = slog.New(h.log)
		node := newNode(t, c)
		ln, dial := listenCarrier(t, carrier, c.Logger, dialLog)
		node.Serve(ln)
		h.node, h.addr = node, dial(ln.Addr().String())
	}
	return hubs
}

// onAddr waits until near's link is up at hubs[at] with carriers carriers,
// all of them there: the hub's link has them too, and no other hub has a
// link up. near logs to log.
func onAddr(t *testing.T, near *Node, log *testkit.Recorder, hubs []hub, at, carriers int) {
	t.Helper()
	want := hubs[at].addr.String()
	// The log first: a status asked for while the link moves on could
	// wait a second for a Scheduler that is stopping.
	log.Wait(t, 10*time.Second, "link up logged at "+want, func(r testkit.Record) bool {
		return r.Msg == "link up" && r.Attrs["addr"] == want && r.Attrs["failover"] == fmt.Sprintf("%d of %d", at+1, len(hubs))
	})
	waitFor(t, "the link up at "+want+" with all its carriers", func() bool {
		l, ok := upLink(near)
		return ok && l.Addr == want && l.Peer == want && l.Carriers == carriers && !l.Resuming
	})
	// The hub's own account, from its log: its Status would also ask the
	// short-lived Links that hand each joining carrier over.
	hubs[at].log.Wait(t, 10*time.Second, fmt.Sprintf("%d carriers at %s", carriers, want), func(r testkit.Record) bool {
		return r.Msg == "carrier joined the link" && fmt.Sprint(r.Attrs["carriers"]) == fmt.Sprint(carriers)
	})
	l, _ := upLink(near)
	if len(l.Addrs) != len(hubs) || l.Addrs[at] != want {
		t.Fatalf("status lists the addresses %q, want %d with %s at %d", l.Addrs, len(hubs), want, at)
	}
	for i, h := range hubs {
		if n := h.node.Stats().linksUp.Load(); i != at && n != 0 {
			t.Fatalf("%d links up at %s, which is not the address in use", n, h.addr)
		}
	}
}

// TestFailover: a striped link to the first of two hubs carries traffic,
// all its carriers at that hub; the hub closes (its GOAWAY says the link
// cannot be resumed); the link comes up at the second hub, every carrier
// there, logged and shown in status, and new traffic flows.
func TestFailover(t *testing.T) { eachCarrier(t, testFailover) }

func testFailover(t *testing.T, carrier string) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	log := testkit.NewRecorder()
	near := newNode(t, Config{Logger: slog.New(log), Forwards: []forward.Forward{fwd(t, echo)}, Carriers: 2,
		Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	hubs := startHubs(t, 2, carrier, Config{}, slog.New(log))
	near.Connect(hubs[0].addr, hubs[1].addr)
	onAddr(t, near, log, hubs, 0, 2)
	if err := echoStreams(t, near.ForwardAddrs()[0], 4, 256<<10); err != nil {
		t.Fatalf("through the first hub: %v", err)
	}
	hubs[0].node.Close()
	onAddr(t, near, log, hubs, 1, 2)
	b := hubs[1].addr.String()
	log.Wait(t, 10*time.Second, "the failover logged", func(r testkit.Record) bool {
		return r.Msg == "failing over to "+b+" (2 of 2)" && r.Attrs["addr"] == b && r.Attrs["reason"] == "link lost"
	})
	if err := echoStreams(t, near.ForwardAddrs()[0], 4, 256<<10); err != nil {
		t.Fatalf("through the second hub: %v", err)
	}
}

// TestFailoverHubGone: a link whose hub vanishes (killed: no GOAWAY, its
// address refusing connections from then on) does not wait out its
// resume window (an hour here) redialling it: two refused dials end the
// session, and the link comes up at the next hub.
func TestFailoverHubGone(t *testing.T) {
	testkit.CheckLeaks(t)
	log := testkit.NewRecorder()
	near := newNode(t, Config{Logger: slog.New(log), ResumeWindow: time.Hour,
		Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	hubs := startHubs(t, 2, "tcp", Config{ResumeWindow: time.Hour}, slog.New(log))
	proxy := testkit.NewProxy(t, strings.TrimPrefix(hubs[0].addr.String(), "tcp://"))
	first, err := carriers.NewDialer(proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	near.Connect(first, hubs[1].addr)
	waitFor(t, "the link up at the first hub", func() bool {
		l, ok := upLink(near)
		return ok && l.Addr == first.String() && !l.Resuming
	})
	proxy.Down()
	log.Wait(t, 10*time.Second, "the session given up", func(r testkit.Record) bool {
		return r.Msg == "link not resumable: its address refuses connections; moving to the next"
	})
	waitFor(t, "the link up at the second hub", func() bool {
		l, ok := upLink(near)
		return ok && l.Addr == hubs[1].addr.String()
	})
}

// TestFailoverAtStart: the first address refuses; the second is dialled
// at once, not after the backoff (an hour here: a backoff would never
// end).
func TestFailoverAtStart(t *testing.T) {
	testkit.CheckLeaks(t)
	log := testkit.NewRecorder()
	near := newNode(t, Config{Logger: slog.New(log), Backoff: time.Hour, MaxBackoff: time.Hour})
	hubs := startHubs(t, 1, "tcp", Config{}, slog.New(log))
	dead, err := carriers.NewDialer(testkit.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	near.Connect(dead, hubs[0].addr)
	waitFor(t, "the link up at the second address", func() bool {
		l, ok := upLink(near)
		return ok && l.Addr == hubs[0].addr.String()
	})
	log.Wait(t, time.Second, "the failover logged", func(r testkit.Record) bool {
		return r.Msg == "failing over to "+hubs[0].addr.String()+" (2 of 2)" && r.Attrs["from"] == dead.String() && r.Attrs["dial"] == "now"
	})
	for _, r := range log.Records() {
		if r.Msg == "link redial scheduled" {
			t.Fatalf("a redial was scheduled: %v", r.Attrs)
		}
	}
}

// TestFailoverFailFast: with Config.FailFast, a permanent error (a key the
// hub does not share) at one address moves on to the next; only when every
// address has failed so is it fatal.
func TestFailoverFailFast(t *testing.T) {
	testkit.CheckLeaks(t)
	key, other := []byte("the key of the test, 32 bytes ok"), []byte("a key nobody else holds, 32 byte")
	dialing := func(log *testkit.Recorder) *Node {
		return newNode(t, Config{Logger: slog.New(log), Key: key, FailFast: true, Backoff: time.Hour, MaxBackoff: time.Hour})
	}
	log := testkit.NewRecorder()
	one, every := dialing(testkit.NewRecorder()), dialing(log)
	hubLog := slog.New(testkit.NewRecorder())
	wrong := startHubs(t, 2, "tcp", Config{Key: other}, hubLog)
	right := startHubs(t, 1, "tcp", Config{Key: key}, hubLog)
	t.Run("one address refuses the key", func(t *testing.T) {
		n := one
		n.Connect(wrong[0].addr, right[0].addr)
		waitFor(t, "the link up at the second address", func() bool {
			l, ok := upLink(n)
			return ok && l.Addr == right[0].addr.String()
		})
		select {
		case err := <-n.Failed():
			t.Fatalf("failed: %v", err)
		default:
		}
	})
	t.Run("every address refuses the key", func(t *testing.T) {
		n := every
		n.Connect(wrong[0].addr, wrong[1].addr)
		select {
		case err := <-n.Failed():
			testkit.WantErr(t, "the link", err, engine.ErrAuth)
		case <-time.After(20 * time.Second): // hang guard
			t.Fatal("no failure")
		}
		log.Wait(t, time.Second, "the second address tried", func(r testkit.Record) bool {
			return r.Msg == "failing over to "+wrong[1].addr.String()+" (2 of 2)" && r.Attrs["dial"] == "now"
		})
		log.Wait(t, time.Second, "giving up at the second address", func(r testkit.Record) bool {
			return r.Msg == "giving up on the link" && r.Attrs["peer"] == wrong[1].addr.String()
		})
	})
}

// TestStatusWhileResuming: a link waiting to resume shows no round trip
// (the last one measured was of a carrier that is gone), and shows one
// again once it has resumed.
func TestStatusWhileResuming(t *testing.T) {
	testkit.CheckLeaks(t)
	near := newNode(t, Config{ResumeWindow: time.Hour, Keepalive: 20 * time.Millisecond,
		Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	hubs := startHubs(t, 1, "tcp", Config{ResumeWindow: time.Hour}, slog.New(slog.DiscardHandler))
	proxy := testkit.NewProxy(t, strings.TrimPrefix(hubs[0].addr.String(), "tcp://"))
	d, err := carriers.NewDialer(proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	near.Connect(d)
	waitFor(t, "a round trip measured", func() bool {
		l, ok := upLink(near)
		return ok && l.RTT > 0 && !l.Resuming
	})
	proxy.Pause() // the redials connect, and hear nothing: the link waits to resume
	proxy.Cut()
	var l LinkStatus
	waitFor(t, "the link waiting to resume", func() bool {
		ls := near.Status().Links
		if len(ls) == 1 {
			l = ls[0]
		}
		return l.Resuming
	})
	if l.RTT != 0 {
		t.Fatalf("a link waiting to resume shows a round trip of %v", l.RTT)
	}
	proxy.Resume()
	waitFor(t, "resumed, with a round trip", func() bool {
		l, ok := upLink(near)
		return ok && !l.Resuming && l.RTT > 0
	})
}
