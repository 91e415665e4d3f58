package cluster

import (
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestEtcdProvider: protoactor's etcd provider against a real etcd on
// loopback: two members find each other there and share the directory,
// and one that leaves takes its entries with it.
func TestEtcdProvider(t *testing.T) {
	t.Parallel()
	etcd := testkit.Etcd(t)
	cfg := Config{Provider: "etcd", Etcd: []string{etcd}}
	a := start(t, cfg)
	b := start(t, cfg)
	waitHubs(t, a, a, b)
	waitHubs(t, b, a, b)
	if err := a.Register(Entry{Bind: "tcp/*:8080"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(Entry{Bind: "tcp/*:8081"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "registered on a and b", holds(Entry{Bind: "tcp/*:8080", Hub: a.ID()}, Entry{Bind: "tcp/*:8081", Hub: b.ID()}))
	b.Close()
	waitHubs(t, a, a)
	waitFor(t, a, "after b left", holds(Entry{Bind: "tcp/*:8080", Hub: a.ID()}))
}

func TestEtcdUnreachable(t *testing.T) {
	_, err := Start(Config{Name: "x", Bind: "127.0.0.1:0", Provider: "etcd", Etcd: []string{testkit.FreeAddr(t)}, RequestTimeout: 500e6})
	testkit.WantErr(t, "Start with no etcd", err, ErrStart)
}
