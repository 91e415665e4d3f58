package actors

// The errors of package actors, for errors.Is. Each is wrapped with %w
// where it happens, with what it happened to.

import (
	"errors"

	"github.com/sockmux/sockmux/engine"
)

// errPeerSilent is why a link whose peer sent nothing for three keepalive
// intervals was dropped.
var errPeerSilent = errors.New("peer silent")

// errPeerRefused is a handshake the peer ended with a GOAWAY; the error
// carries the peer's reason (engine.ErrPeerRefused).
var errPeerRefused = engine.ErrPeerRefused

// errResumeExpired is why a link whose carriers all dropped went down: it
// was not resumed within the resume window (or the peer no longer had it).
// It is engine.ErrResumeExpired, which a GOAWAY with that code unwraps to.
var errResumeExpired = engine.ErrResumeExpired

// errForwardRefused is a -R the peer would not listen for.
var errForwardRefused = errors.New("reverse forward refused")

// ErrNeedIdentity is a Config that pins or authorizes keys without an
// Identity of its own.
var ErrNeedIdentity = errors.New("authorized keys, a pinned peer key and known hosts need an identity of this side (--identity; make one with sockmux keygen)")

// errKeyRevoked is why the link of a peer was closed whose key a reload
// took out of the authorized keys.
var errKeyRevoked = errors.New("peer's key no longer authorized")

// ErrClosed is returned by a Node that has been closed.
var ErrClosed = errors.New("node closed")

// errGaveUp is a dialling link that stopped retrying: its retries or its
// connect timeout are spent.
var errGaveUp = errors.New("gave up dialling")

// errPeerNotReading is why a link was closed whose peer let more replies
// pile up than maxControlBacklog.
var errPeerNotReading = errors.New("peer does not read what this side sends")

// ErrBadUpstream is an UPSTREAM that does not parse.
var ErrBadUpstream = errors.New("bad upstream")

// errLinkDown is a stream whose link went down before the peer answered.
var errLinkDown = errors.New("link went down before the stream opened")

// errLinkLost is a stream of the library's cut short by its link's end,
// opened or not.
var errLinkLost = errors.New("the link went down")

// errNoLink is a stream that found no link to carry it within the open
// timeout. It is a timeout: a net.Error whose Timeout is true.
var errNoLink error = noLinkError{}

// ErrStreamReset is a stream cut short: reset by the peer or by this
// side, refused by the peer, or left by its link. The error a LocalConn
// returns wraps it, with the reason.
var ErrStreamReset = errors.New("stream reset")

// ErrWriteShut is a write to a LocalConn whose write side is shut.
var ErrWriteShut = errors.New("write after CloseWrite")

// errLocalIO is a Read or Write on a localEnd, which the Stream never does.
var errLocalIO = errors.New("a stream's local end is not read or written as a socket")

// errNotHeldHere is a stream another hub brought for one of this node's
// own pooled reverse forwards when none of its members here is live: it
// is refused rather than sent on to another hub (one hop at most).
var errNotHeldHere = errors.New("no live edge holds that reverse forward here")

// errPoolDoor is a UDP pool in a hub cluster that could not open its door
// (pool_udp.go): the loopback socket other hubs send its flows to.
var errPoolDoor = errors.New("could not open the UDP pool's door for other hubs")
