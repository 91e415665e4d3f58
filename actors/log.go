package actors

import (
	"context"
	"log/slog"
)

// libHandler routes protoactor's own logs into sockmux's logger one level
// down, so that its chatter ("actor system started", dead letters) shows
// only at debug while its warnings and errors still show.
type libHandler struct{ h slog.Handler }

func demote(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return l - 4
	}
	return l
}

func (d libHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, demote(l))
}

func (d libHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	return d.h.Handle(ctx, r)
}

func (d libHandler) WithAttrs(as []slog.Attr) slog.Handler { return libHandler{d.h.WithAttrs(as)} }
func (d libHandler) WithGroup(g string) slog.Handler       { return libHandler{d.h.WithGroup(g)} }

// warn logs a warning that a peer or a flood of connections can repeat at
// will (a refused OPEN, a failed handshake, an accept error): one line per
// cause per interval, the next one counting those left out. The cause is
// the message, the root of each error among args (a bounded set: a
// sentinel, an errno), and each cause among args, which is not logged.
func (e *env) warn(msg string, args ...any) {
	key := msg
	out := args[:0:0]
	for _, a := range args {
		switch v := a.(type) {
		case cause:
			key += "|" + string(v)
			continue
		case error:
			key += "|" + rootCause(v)
		}
		out = append(out, a)
	}
	e.limit.Log(e.log, slog.LevelWarn, key, msg, out...)
}

// cause names, among a warning's args, why it happened, for the rate
// limit of env.warn.
type cause string

// rootCause is the text of the innermost error err wraps (through the
// first of several, for an error that wraps more than one: "%w: %w" puts
// the sentinel first).
func rootCause(err error) string {
	for {
		var u error
		switch e := err.(type) {
		case interface{ Unwrap() error }:
			u = e.Unwrap()
		case interface{ Unwrap() []error }:
			if es := e.Unwrap(); len(es) > 0 {
				u = es[0]
			}
		}
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
