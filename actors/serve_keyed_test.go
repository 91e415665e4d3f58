package actors

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestServeKeyed: a listener served with a key of its own admits the links
// that hold that key, whatever the node's own key or identities are, and
// no other; the node's own listener still takes only its own peers. (A
// cluster's hubs reach each other so, with a key derived from the
// cluster's: internal/cluster's HubLinkKey.)
func TestServeKeyed(t *testing.T) {
	edgeKey := []byte("the edges' key, 32 bytes long...")
	hubKey := []byte("the hubs' own key, also long....")
	lk, dk := newIdentity(t), newIdentity(t)
	identities := func() Config {
		return Config{Identity: lk, AuthorizedKeys: authorizedKeys(t, dk.Public.String())}
	}
	for _, tc := range []struct {
		name    string
		node    Config // the listening node's own
		dialer  Config
		ownDoor bool  // dial the node's own listener, not the keyed one
		want    error // nil: the link comes up and carries a stream
	}{
		{"hub key, node keyed", Config{Key: edgeKey}, Config{Key: hubKey}, false, nil},
		{"hub key, node with identities only", identities(), Config{Key: hubKey}, false, nil},
		{"edge key at the hubs' door", Config{Key: edgeKey}, Config{Key: edgeKey}, false, engine.ErrKeyMismatch},
		{"hub key at the edges' door", Config{Key: edgeKey}, Config{Key: hubKey}, true, engine.ErrKeyMismatch},
		{"an edge's identity at the hubs' door", identities(), Config{Identity: dk}, false, engine.ErrAuth},
		{"no key at the hubs' door", Config{Key: edgeKey}, Config{}, false, engine.ErrNoPeerKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			rec := testkit.NewRecorder()
			tc.node.Logger = slog.New(rec)
			a, err := NewNode(tc.node)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			own, err := carriers.Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			a.Serve(own)
			keyed, err := carriers.Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := a.ServeKeyed(keyed, hubKey); err != nil {
				t.Fatal(err)
			}
			door := keyed.Addr().String()
			if tc.ownDoor {
				door = own.Addr().String()
			}
			tc.dialer.FailFast = true
			b := dialAlso(t, door, tc.dialer)
			if tc.want == nil {
				b.waitUp(t)
				echoOver(t, b, testkit.Echo(t))
				return
			}
			r := rec.Wait(t, 10*time.Second, "link handshake failed", func(r testkit.Record) bool {
				return r.Msg == "link handshake failed"
			})
			if err, _ := r.Attrs["err"].(error); !errors.Is(err, tc.want) {
				t.Fatalf("the listener refused with %v, want %v", err, tc.want)
			}
			if a.Stats().linksUp.Load() != 0 {
				t.Fatal("a link came up")
			}
		})
	}
	n, err := NewNode(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.ServeKeyed(nil, []byte("short")); !errors.Is(err, engine.ErrShortKey) {
		t.Fatalf("ServeKeyed with a short key: %v, want ErrShortKey", err)
	}
}
