package cluster

import (
	"bytes"
	"errors"
	"testing"
)

// TestHubLinkKey: the hubs' link key is the same for the same cluster key
// and name, another for another key or name, never the cluster's key
// itself, and a short cluster key is refused.
func TestHubLinkKey(t *testing.T) {
	key := []byte("a cluster key of 32 bytes, or so")
	a, err := HubLinkKey(key, "prod")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := HubLinkKey(bytes.Clone(key), "prod")
	otherName, _ := HubLinkKey(key, "staging")
	otherKey, _ := HubLinkKey([]byte("another cluster key, just as long"), "prod")
	switch {
	case len(a) != 32:
		t.Fatalf("%d bytes, want 32", len(a))
	case !bytes.Equal(a, again):
		t.Fatal("two hubs with the same key and name derive different keys")
	case bytes.Equal(a, otherName), bytes.Equal(a, otherKey), bytes.Equal(a, key[:min(len(key), 32)]):
		t.Fatal("the key does not depend on the cluster's key and name alone")
	}
	if _, err := HubLinkKey([]byte("short"), "prod"); !errors.Is(err, ErrKey) {
		t.Fatalf("a short key: %v, want ErrKey", err)
	}
}
