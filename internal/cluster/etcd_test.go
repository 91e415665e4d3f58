package cluster

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sockmux/sockmux/internal/testkit"
)

// etcdPair is a real etcd on loopback and two members of cluster name on
// it that count each other, a holding tcp/*:8080.
func etcdPair(t *testing.T, name string) (etcd string, a, b *Member) {
	t.Helper()
	etcd = testkit.Etcd(t)
	cfg := Config{Name: name, Provider: "etcd", Etcd: []string{etcd}}
	a = start(t, cfg)
	b = start(t, cfg)
	waitHubs(t, a, a, b)
	waitHubs(t, b, a, b)
	if err := a.Register(Entry{Bind: "tcp/*:8080"}); err != nil {
		t.Fatal(err)
	}
	return etcd, a, b
}

// TestEtcdProvider: protoactor's etcd provider against a real etcd on
// loopback: two members find each other there and share the directory,
// and one that leaves takes its entries with it.
func TestEtcdProvider(t *testing.T) {
	t.Parallel()
	_, a, b := etcdPair(t, "test")
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

// TestEtcdRejoinAfterLeaseLost: a hub whose etcd lease ran out (stopped
// or cut off from etcd for longer than its TTL) is counted out by the
// others for good under its member id; it finds its own registration
// gone, rejoins under a fresh id, and is counted again, its entries with
// it. The lease is revoked here, as its running out would end it.
func TestEtcdRejoinAfterLeaseLost(t *testing.T) {
	t.Parallel()
	etcd, a, b := etcdPair(t, "lease")
	both := holds(Entry{Bind: "tcp/*:8080", Hub: a.ID()})
	waitFor(t, b, "a's entry", both)

	old := a.memberID()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := etcdBaseKey + "/lease/lease@" + old // protoactor's etcd provider: BASE/NAME/NAME@ID
	got, err := cli.Get(ctx, key)
	if err != nil || len(got.Kvs) != 1 || got.Kvs[0].Lease == 0 {
		t.Fatalf("a's registration %s: %v, %v", key, got, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(got.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}

	waitHubs(t, b, b) // a counted out, its id blocked for good
	waitFor(t, b, "a's entry gone", holds())
	waitHubs(t, b, a, b)
	waitHubs(t, a, a, b)
	waitFor(t, b, "a's entry after its rejoin", both)
	if now := a.memberID(); now == old {
		t.Errorf("a is counted again under its old member id %s: want a fresh one", old)
	}
}
