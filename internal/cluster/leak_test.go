package cluster

import (
	"log/slog"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"

	"go.uber.org/goleak"
)

// protoactorLeaks are the goroutines protoactor-go and its gRPC leave
// behind after a cluster member shuts down (throttles that never stop,
// endpoint connections its remote does not close): not this package's,
// and not ours to stop.
var protoactorLeaks = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1"),
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.NewGossipActor.NewThrottleWithLogger.func2.1"),
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	goleak.IgnoreTopFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
	goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
}

// TestCloseLeavesNoGoroutines: a member's own goroutines (its loop, its
// probes, its hub links, its watchers) end with Close.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	needNoRace(t)
	existing := goleak.IgnoreCurrent()
	key := testKey(t)
	doorA, doorB := openTestDoor(t, key), openTestDoor(t, key)
	cfg := Config{Name: "test", Bind: "127.0.0.1:0", Provider: "static", Key: key, Logger: testLogger(t), Link: doorA.addr}
	a, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seeds, cfg.Link = []string{a.ID()}, doorB.addr
	b, err := Start(cfg)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	if err := a.Register(Entry{Bind: "tcp/*:1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "registered on a", holds(Entry{Bind: "tcp/*:1", Hub: a.ID()}))
	a.Close()
	b.Close()
	doorA.node.Close()
	doorB.node.Close()
	if err := goleak.Find(append(protoactorLeaks, existing)...); err != nil {
		t.Errorf("goroutines left behind: %v", err)
	}
}

// TestRejoinLeavesNoGoroutines: a member that rejoins (a fresh
// incarnation in place of the one found expelled) leaves nothing of the
// old one running, and its Watch and WatchHubs readers go on reading
// from the same channels through the rejoin until Close.
func TestRejoinLeavesNoGoroutines(t *testing.T) {
	needNoRace(t)
	existing := goleak.IgnoreCurrent()
	key := testKey(t)
	doorA, doorB := openTestDoor(t, key), openTestDoor(t, key)
	cfg := Config{Name: "test", Bind: "127.0.0.1:0", Provider: "static", Key: key, Logger: testLogger(t), Link: doorA.addr}
	a, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := testkit.NewRecorder()
	cfg.Seeds, cfg.Link, cfg.Logger = []string{a.ID()}, doorB.addr, slog.New(rec)
	b, err := Start(cfg)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	if err := b.Register(Entry{Bind: "tcp/*:1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "registered on b", holds(Entry{Bind: "tcp/*:1", Hub: b.ID()}))
	dir, stopDir := b.Watch()
	hubs, stopHubs := b.WatchHubs()
	before := b.memberID()
	b.mu.Lock()
	inc := b.inc
	b.mu.Unlock()
	b.expelled(inc, "the test")
	rec.Wait(t, waitLimit, "b rejoined", func(r testkit.Record) bool {
		return r.Msg == "cluster: rejoined the cluster under a fresh member id"
	})
	if after := b.memberID(); after == before {
		t.Errorf("b rejoined under its old id %s", before)
	}
	waitHubs(t, a, a, b)
	waitOn(t, hubs, "b's hubs after it rejoined", func(h []string) bool { return len(h) == 2 })
	waitFor(t, a, "b's entry after it rejoined", holds(Entry{Bind: "tcp/*:1", Hub: b.ID()}))
	waitOn(t, dir, "b's own directory after it rejoined", holds(Entry{Bind: "tcp/*:1", Hub: b.ID()}))
	stopDir()
	stopHubs()
	a.Close()
	b.Close()
	doorA.node.Close()
	doorB.node.Close()
	if err := goleak.Find(append(protoactorLeaks, existing)...); err != nil {
		t.Errorf("goroutines left behind: %v", err)
	}
}
