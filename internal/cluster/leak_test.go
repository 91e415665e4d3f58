package cluster

import (
	"testing"

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
