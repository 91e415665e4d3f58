package cluster

// The key of the sockmux links between a cluster's hubs.

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"

	"github.com/sockmux/sockmux/engine"
)

// hubLinkSalt separates this derivation from the control plane's
// (tlsSalt) and from any other use of the cluster's key.
const hubLinkSalt = "sockmux cluster hub links v1"

// HubLinkKey is the pre-shared key of the sockmux links between the hubs
// of the cluster name whose key is key: HKDF-SHA256 of the cluster's key,
// salted, with the cluster's name as info, 32 bytes. Every hub holding
// the cluster's key derives the same one, and nothing else can: a hub
// serves the other hubs' links on a listener of their own with it
// (actors.Node.ServeKeyed) and dials them with it, so the hubs' links are
// authenticated and encrypted by the cluster's key, not by the edges' key
// or identities (which a hub using authorized keys would not have to give
// another hub).
func HubLinkKey(key []byte, name string) ([]byte, error) {
	if len(key) < engine.MinKeyLen {
		return nil, fmt.Errorf("%w: %d bytes, at least %d needed", ErrKey, len(key), engine.MinKeyLen)
	}
	k, err := hkdf.Key(sha256.New, key, []byte(hubLinkSalt), "cluster "+name, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return k, nil
}
