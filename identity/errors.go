package identity

import "errors"

// Sentinel errors, wrapped with %w where they happen.
var (
	// ErrBadKey is a public or private key that does not parse.
	ErrBadKey = errors.New("bad key")
	// ErrKeyMode is a private key file others may read.
	ErrKeyMode = errors.New("private key file is readable by others")
	// ErrKeyExists is keygen asked to write over a key file.
	ErrKeyExists = errors.New("key file exists")
	// ErrBadAuthorizedKeys is an authorized keys file that does not parse.
	ErrBadAuthorizedKeys = errors.New("bad authorized keys")
	// ErrBadKnownHosts is a known hosts file that does not parse.
	ErrBadKnownHosts = errors.New("bad known hosts")
	// ErrNotAuthorized is a peer whose key is not in the authorized keys.
	ErrNotAuthorized = errors.New("key not in the authorized keys")
	// ErrHostKeyMismatch is a listener whose key is not the one pinned.
	ErrHostKeyMismatch = errors.New("listener's key does not match the pinned key")
	// ErrUnknownHostKey is a listener whose key nothing pins.
	ErrUnknownHostKey = errors.New("listener's key is not known")
)
