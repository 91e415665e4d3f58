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

// startTestHub starts a testHub on host. With key, its link listener
// (the edge's, and the other hubs' bridges') takes that key alone.
func startTestHub(t *testing.T, agent *test.InMemAgent, host, port, name string, key []byte) *testHub {
	t.Helper()
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &testHub{log: testkit.NewRecorder(), host: host}
	h.m = start(t, Config{ClusterProvider: test.NewTestProvider(agent), Link: ln.Addr().String()})
	allow := forward.MustTargetPolicy("*:" + port)
	h.node, err = actors.NewNode(actors.Config{Key: key, RemoteBindAddr: host, AllowListen: allow, BindWatcher: func(rb actors.ReverseBind) {
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
	edge, err := actors.NewNode(actors.Config{Key: key, Logger: slog.New(edgeLog), Pool: "web", Remotes: []forward.Forward{{Bind: "*:" + port, Target: target}}})
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

// startBridgeOnly starts a hub that holds nothing: a member of agent's
// cluster and a node with no links of its own, whose bridge (cfg) only
// bridges the other hubs' binds. Closed before the member, as in
// startTestHub.
func startBridgeOnly(t *testing.T, agent *test.InMemAgent, cfg BridgeConfig) *Bridge {
	t.Helper()
	m := start(t, Config{ClusterProvider: test.NewTestProvider(agent), Link: "127.0.0.1:1"})
	node, err := actors.NewNode(actors.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b := NewBridge(m, cfg)
	b.Attach(node)
	t.Cleanup(func() { b.Close(); node.Close() })
	return b
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
	a := startTestHub(t, agent, "127.0.0.11", port, "edge1", nil)
	b := startTestHub(t, agent, "127.0.0.12", port, "edge2", nil)
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

// TestBridgeSetConfig: a bridge given new settings (a reload changing its
// link's allow-listen) bridges what they allow and stops bridging what
// they refuse, without being made again.
func TestBridgeSetConfig(t *testing.T) {
	t.Parallel()
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	_, other, _ := net.SplitHostPort(testkit.FreeAddr(t))
	agent := test.NewInMemAgent()
	a := startTestHub(t, agent, "127.0.0.11", port, "edge1", nil)

	// Hub b holds nothing: it only bridges a's bind, when allowed.
	const host = "127.0.0.12"
	rec := testkit.NewRecorder()
	cfg := func(allow string) BridgeConfig {
		return BridgeConfig{RemoteBindAddr: host, AllowListen: forward.MustTargetPolicy("*:" + allow), Logger: slog.New(rec)}
	}
	b := startBridgeOnly(t, agent, cfg(other))
	at := net.JoinHostPort(host, port)
	rec.Wait(t, waitLimit, "b refusing a's bind", func(r testkit.Record) bool {
		return r.Msg == "cluster: a bind of another hub is not bridged here: not allowed by --allow-listen" && r.Attrs["listen"] == at
	})

	b.SetConfig(cfg(port))
	rec.Wait(t, waitLimit, "b bridging a's bind once allowed", func(r testkit.Record) bool {
		return r.Msg == "cluster: bridging a bind of another hub" && r.Attrs["hub"] == a.m.ID() && r.Attrs["listen"] == at
	})
	if got := heldName(t, at); got != "edge1" {
		t.Fatalf("b's bridged bind reached %q, want edge1", got)
	}

	b.SetConfig(cfg(other))
	rec.Wait(t, waitLimit, "b no longer bridging a's bind", func(r testkit.Record) bool {
		return r.Msg == "cluster: bind no longer bridged" && r.Attrs["hub"] == a.m.ID() && r.Attrs["listen"] == at
	})
	if c, err := net.Dial("tcp", at); err == nil {
		c.Close()
		t.Fatalf("%s still takes connections after b's allow-listen left it out", at)
	}
}

// TestBridgeSetConfigKey: a bridge given a new key (a reload changing
// its link's key-file, in a cluster without a key) dials the other hubs
// with it at once: a link that the old key could not bring up comes up.
func TestBridgeSetConfigKey(t *testing.T) {
	t.Parallel()
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	agent := test.NewInMemAgent()
	key, wrong := testKey(t), testKey(t)
	a := startTestHub(t, agent, "127.0.0.13", port, "edge1", key)

	const host = "127.0.0.14"
	rec := testkit.NewRecorder()
	cfg := BridgeConfig{Key: wrong, RemoteBindAddr: host, AllowListen: forward.MustTargetPolicy("*:" + port), Logger: slog.New(rec)}
	b := startBridgeOnly(t, agent, cfg)
	rec.Wait(t, waitLimit, "b's link to a failing with the wrong key", func(r testkit.Record) bool {
		return r.Msg == "link handshake failed" && r.Attrs["hub"] == a.m.ID()
	})

	cfg.Key = key
	b.SetConfig(cfg)
	at := net.JoinHostPort(host, port)
	rec.Wait(t, waitLimit, "b bridging a's bind with the right key", func(r testkit.Record) bool {
		return r.Msg == "cluster: bridging a bind of another hub" && r.Attrs["hub"] == a.m.ID() && r.Attrs["listen"] == at
	})
	if got := heldName(t, at); got != "edge1" {
		t.Fatalf("b's bridged bind reached %q, want edge1", got)
	}
}
