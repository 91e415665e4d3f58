package cluster

// The errors of package cluster, for errors.Is.

import "errors"

// ErrConfig is a Config that cannot work: a missing name or bind address,
// an unknown provider, a seed that is not host:port. The error wrapping it
// names the field (as its command-line flag).
var ErrConfig = errors.New("cluster: bad configuration")

// ErrNoKey is a control plane asked to listen on an address other than
// loopback without the cluster's key: anyone who can reach it could join
// the cluster and change its directory.
var ErrNoKey = errors.New("cluster: refusing to listen on a non-loopback address without --cluster-key")

// ErrKey is cluster key material that cannot be used (too short).
var ErrKey = errors.New("cluster: bad cluster key")

// ErrStart is protoactor failing to start the member (its remote could
// not listen, its provider could not register); the error wrapping it
// says why.
var ErrStart = errors.New("cluster: member did not start")

// ErrClosed is a call on a Member after Close.
var ErrClosed = errors.New("cluster: member closed")

// ErrMalformed is a control-plane message that does not decode, or breaks
// a limit (too many entries, a field too long).
var ErrMalformed = errors.New("cluster: malformed message")

// ErrEntry is an Entry that cannot be registered (no bind, a field too
// long).
var ErrEntry = errors.New("cluster: bad entry")

// ErrDirectory is a request to the directory grain that failed (timed
// out, no member to host it, an error answer).
var ErrDirectory = errors.New("cluster: directory request failed")
