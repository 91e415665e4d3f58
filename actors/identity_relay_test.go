package actors_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/testpair"
)

// identityPair is the configuration of a Pair keyed by identities (XX):
// the listener A admits the dialler's key only, the dialler B pins the
// listener's; dk is the dialler's identity.
func identityPair(t *testing.T) (a, b func(*actors.Config), dk *identity.PrivateKey) {
	t.Helper()
	lk, err := identity.Generate("")
	if err != nil {
		t.Fatal(err)
	}
	if dk, err = identity.Generate(""); err != nil {
		t.Fatal(err)
	}
	ak, err := identity.ParseAuthorizedKeys([]byte(dk.Public.String()))
	if err != nil {
		t.Fatal(err)
	}
	return func(c *actors.Config) { c.Identity, c.AuthorizedKeys = lk, ak },
		func(c *actors.Config) { c.Identity, c.PeerKey = dk, &lk.Public }, dk
}

// TestRelaySeesNoCleartextIdentity: TestRelaySeesNoCleartext for links
// keyed by identities, with and without a pre-shared key mixed in: the
// relay sees none of the payload, the target all of it.
func TestRelaySeesNoCleartextIdentity(t *testing.T) {
	payload := knownPayload(1 << 20)
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"identities", nil}, {"identities and key", secureKey}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, dk := identityPair(t)
			target := newSink(t)
			p := testpair.New(t, testpair.Config{BForwards: []forward.Forward{fwd(t, target.addr)}, Proxy: true, Key: tc.key, A: a, B: b})
			rec := &recorder{}
			p.Proxy.SetTap(rec.tap)
			c := testkit.Dial(t, p.B.ForwardAddrs()[0])
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			c.CloseWrite()
			select {
			case <-target.done:
			case <-time.After(20 * time.Second):
				t.Fatal("the target did not get the payload's end")
			}
			if got := target.bytes(); !bytes.Equal(got, payload) {
				t.Fatalf("target got %d bytes, want the %d sent", len(got), len(payload))
			}
			if rec.contains([]byte("KNOWN-PAYLOAD-")) {
				t.Fatal("the relay saw the payload's marker")
			}
			if st := p.A.Status(); len(st.Links) != 1 || st.Links[0].PeerKey != dk.Public.String() {
				t.Fatalf("the listener's link: %+v, want the dialler's key", st.Links)
			}
		})
	}
}
