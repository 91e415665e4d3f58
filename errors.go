package sockmux

// The errors of package sockmux, for errors.Is and errors.As.

import (
	"errors"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/engine"
)

// ErrSessionClosed is a Session that has ended: closed by this side, or
// by the peer (then wrapped with its reason), or its link lost.
var ErrSessionClosed = errors.New("sockmux: session closed")

// ErrStreamReset is a stream cut short: reset by the peer or by this side,
// refused by the peer, or left by its link. Read and Write return an
// error that wraps it with the reason (a *ResetError, an *OpenError, or
// the link's end).
var ErrStreamReset = actors.ErrStreamReset

// ErrWriteShut is a Write to a Stream after its CloseWrite. (After Close,
// as for any net.Conn, a Write returns net.ErrClosed.)
var ErrWriteShut = actors.ErrWriteShut

// ErrAcceptBacklog is why this side refused a stream of the peer's:
// AcceptBacklog streams were already waiting for AcceptStream. The
// opener's Read or Write gets an *OpenError (ErrRefused and
// ErrStreamReset), whose reason text says so; errors cross the wire as a
// code and a text, not as Go values.
var ErrAcceptBacklog = errors.New("sockmux: accept backlog full")

// ErrRefused is a stream the peer refused (its accept backlog full, or
// closing): the *OpenError a Stream's Read or Write returns unwraps to it.
var ErrRefused = engine.ErrRefused

// ErrNoDialer is a client that needed another carrier connection (to
// stripe, or to resume) and has no Config.Dialer to make one.
var ErrNoDialer = errors.New("sockmux: no Config.Dialer to make another carrier")

// ErrNotServer is AddCarrier on a client's Session: a client makes its
// carriers with Config.Dialer.
var ErrNotServer = errors.New("sockmux: AddCarrier is for a Server's session")

// ErrBadConfig is a Config that Validate refuses; the error wraps it
// with the field and what was wrong.
var ErrBadConfig = errors.New("sockmux: bad config")

// OpenError is the peer's reason for refusing a stream (Reason.Code
// unwraps to engine.ErrRefused and the like).
type OpenError = actors.OpenError

// ResetError is the peer's reason for resetting a stream.
type ResetError = actors.ResetError

// ErrPeerClosed is a Peer used after Shutdown or Close.
var ErrPeerClosed = actors.ErrClosed

// ErrNeedIdentity is a PeerConfig (or Config) with authorized keys, a
// pinned peer key or known hosts and no Identity of its own.
var ErrNeedIdentity = actors.ErrNeedIdentity

// ErrBadUpstream is a Share's UPSTREAM that does not parse.
var ErrBadUpstream = actors.ErrBadUpstream
