package cluster

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// testHub is one hub of TestBridgeSpreadsPool, in process: its member,
// its node (binding the edges' -R on host, registering them), its bridge
// and one edge of pool "web" whose -R *:port goes to a server saying
// name.
type testHub struct {
	m    *Member
	node *actors.Node
	log  *testkit.Recorder // the bridge's
	host string
}

func startTestHub(t *testing.T, agent *test.InMemAgent, host, port, name string) *testHub {
	t.Helper()
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &testHub{log: testkit.NewRecorder(), host: host}
	h.m = start(t, Config{ClusterProvider: test.NewTestProvider(agent), Link: ln.Addr().String()})
	allow := forward.MustTargetPolicy("*:" + port)
	h.node, err = actors.NewNode(actors.Config{RemoteBindAddr: host, AllowListen: allow, BindWatcher: func(rb actors.ReverseBind) {
		var err error
		if rb.Members == 0 {
			err = h.m.Unregister("tcp/" + rb.Asked)
		} else {
			err = h.m.Register(Entry{Bind: "tcp/" + rb.Asked, Pool: rb.Pool, Addr: rb.Addr, Members: rb.Members})
		}
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("registering %+v: %v", rb, err)
		}
	}})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	h.node.Serve(ln)
	b := NewBridge(h.m, BridgeConfig{RemoteBindAddr: host, AllowListen: allow, Logger: slog.New(h.log)})
	b.Attach(h.node)
	// Closed before the member (the fleet's cleanup, registered first,
	// runs last): the bridge, then the node and its edge.
	t.Cleanup(func() { b.Close(); h.node.Close() })

	target := testkit.Serve(t, func(c net.Conn) {
		c.Write([]byte(name))
		io.Copy(io.Discard, c)
	})
	edgeLog := testkit.NewRecorder()
	edge, err := actors.NewNode(actors.Config{Logger: slog.New(edgeLog), Pool: "web", Remotes: []forward.Forward{{Bind: "*:" + port, Target: target}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { edge.Close() })
	d, err := carriers.NewDialer("tcp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	edge.Connect(d)
	edgeLog.Wait(t, waitLimit, "the edge's -R bound at "+host, func(r testkit.Record) bool { return r.Msg == "reverse forward listening" })
	return h
}

// TestBridgeSpreadsPool: two hubs, each holding one edge of a pool: each
// bridge gives its hub's pool a share for the other hub, so connections
// held open at either hub go to both edges, fewest open streams first,
// and those brought from the other hub are handed to the edge there in
// process (spliced), never back.
func TestBridgeSpreadsPool(t *testing.T) {
	t.Parallel()
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	agent := test.NewInMemAgent()
	a := startTestHub(t, agent, "127.0.0.11", port, "edge1")
	b := startTestHub(t, agent, "127.0.0.12", port, "edge2")
	for _, h := range []*testHub{a, b} {
		other := a
		if h == a {
			other = b
		}
		h.log.Wait(t, waitLimit, h.host+" sharing the other hub's edge", func(r testkit.Record) bool {
			return r.Msg == "cluster: bridging a bind of another hub" && r.Attrs["hub"] == other.m.ID()
		})
	}
	// At a: its own edge and b's share, 10 each.
	count := map[string]int{}
	for range 20 {
		count[heldName(t, net.JoinHostPort(a.host, port))]++
	}
	if count["edge1"] != 10 || count["edge2"] != 10 {
		t.Errorf("20 held connections to hub a went %v, want 10 to each edge", count)
	}
	// At b: its own edge holds the 10 a brought it (each hub counts its
	// own streams to a share, and every stream on its own edges), so of
	// 20 more, a's share gets 10 to even it out, then half of the rest.
	clear(count)
	for range 20 {
		count[heldName(t, net.JoinHostPort(b.host, port))]++
	}
	if count["edge1"] != 15 || count["edge2"] != 5 {
		t.Errorf("20 held connections to hub b went %v, want 15 to a's edge and 5 to its own", count)
	}
	for _, tc := range []struct {
		h    *testHub
		want int64
	}{{a, 15}, {b, 10}} {
		if n := tc.h.node.Stats().Spliced.Load(); n != tc.want {
			t.Errorf("%s spliced %d streams, want the %d the other hub brought", tc.h.host, n, tc.want)
		}
	}
}

// heldName dials addr and reads the name of the server it reaches; the
// connection stays open until the test ends.
func heldName(t testing.TB, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading an edge's name through %s: %v", addr, err)
	}
	return string(buf)
}

// TestBridgeCloseReleasesWatch: a bridge closed while its member runs
// (under `sockmux run`, a reload moving the bridge to another link's
// node, which makes a new one) stops watching the directory: the member
// holds no channel of it, however often bridges come and go.
func TestBridgeCloseReleasesWatch(t *testing.T) {
	t.Parallel()
	m := startTest(t, test.NewInMemAgent(), 1)[0]
	before, _ := m.watching()
	for i := range 3 {
		b := NewBridge(m, BridgeConfig{})
		if n, _ := m.watching(); n != before+1 {
			t.Fatalf("bridge %d: the member has %d directory watchers, want %d", i, n, before+1)
		}
		b.Close()
		if n, _ := m.watching(); n != before {
			t.Fatalf("bridge %d closed: the member still has %d directory watchers, want %d as before it", i, n, before)
		}
	}
}

// TestWatchStop: a watch stopped is closed and no longer handed the
// directory; stopping it again, or after the member closed, does nothing.
func TestWatchStop(t *testing.T) {
	t.Parallel()
	m := startTest(t, test.NewInMemAgent(), 1)[0]
	ch, stop := m.Watch()
	hubs, stopHubs := m.WatchHubs()
	stop()
	stopHubs()
	for range ch { // the directory it held, then closed
	}
	for range hubs {
	}
	if d, h := m.watching(); d != 0 || h != 0 {
		t.Errorf("after stop the member has %d directory and %d membership watchers, want none", d, h)
	}
	stop()
	m.Close()
	stopHubs()
}
