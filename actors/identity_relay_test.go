package actors

import (
	"testing"

	"github.com/sockmux/sockmux/identity"
)

// identityPair is the configuration of a Pair keyed by identities (XX):
// the listener A admits the dialler's key only, the dialler B pins the
// listener's; dk is the dialler's identity.
func identityPair(t *testing.T) (a, b func(*Config), dk *identity.PrivateKey) {
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
	return func(c *Config) { c.Identity, c.AuthorizedKeys = lk, ak },
		func(c *Config) { c.Identity, c.PeerKey = dk, &lk.Public }, dk
}
