package engine

import (
	"errors"
	"fmt"
)

// Errors a peer's reason code stands for. OPEN_FAIL, RST and GOAWAY carry
// a code; the errors that report them (actors.OpenError, GoAwayError)
// unwrap to these, so a caller asks errors.Is(err, engine.ErrDialFailed)
// rather than reading the text.
var (
	ErrRefused       = errors.New("refused by policy")
	ErrDialFailed    = errors.New("the target could not be reached")
	ErrInternal      = errors.New("internal error at the peer")
	ErrShutdown      = errors.New("shutting down")
	ErrTooMany       = errors.New("stream limit reached")
	ErrTimeout       = errors.New("timed out")
	ErrCancelled     = errors.New("cancelled")
	ErrUnknownTarget = errors.New("unknown target")
	ErrBindFailed    = errors.New("bind failed")
	ErrResumeExpired = errors.New("link not resumed within the resume window")
	ErrOverload      = errors.New("overload: replies piled up unread")
	// ErrUnreachable is a dial that failed because the target's host is
	// unknown or unreachable: a dial failure too.
	ErrUnreachable = fmt.Errorf("%w: host unknown or unreachable", ErrDialFailed)
)

var codeErrs = map[Code]error{
	CodeProtocol: ErrProtocol, CodeRefused: ErrRefused, CodeDialFailed: ErrDialFailed,
	CodeFlowControl: ErrFlowControl, CodeVersion: ErrVersion, CodeInternal: ErrInternal,
	CodeShutdown: ErrShutdown, CodeTooManyStream: ErrTooMany, CodeTimeout: ErrTimeout,
	CodeCancelled: ErrCancelled, CodeUnknownTarget: ErrUnknownTarget, CodeAuth: ErrAuth,
	CodeBindFailed: ErrBindFailed, CodeUnknownLink: ErrUnknownLink, CodeResumeExpired: ErrResumeExpired,
	CodeOverload: ErrOverload, CodeUnreachable: ErrUnreachable,
}

// Err is the error code c stands for; nil for CodeNormal and for a code
// this build does not know.
func (c Code) Err() error { return codeErrs[c] }
