package cluster

import (
	"context"
	"log/slog"
)

// libLog routes protoactor's logs into the member's logger lowered: its
// cluster logs every topology step at info and every connection to a
// member that closes (each graceful leave) as an error, which for a hub
// is routine; its errors show at info, the rest at debug. What a hub's
// operator needs (a hub that joined, left or stopped answering, a
// directory out of reach) this package logs itself.
type libLog struct{ h slog.Handler }

// lower maps protoactor's level to the member's.
func lower(l slog.Level) slog.Level {
	switch {
	case l >= slog.LevelError:
		return slog.LevelInfo
	case l >= slog.LevelWarn:
		return slog.LevelDebug
	}
	return slog.LevelDebug - 4
}

// Enabled reports whether the member's logger takes l, lowered.
func (d libLog) Enabled(ctx context.Context, l slog.Level) bool { return d.h.Enabled(ctx, lower(l)) }

// Handle logs r at its lowered level.
func (d libLog) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lower(r.Level)
	return d.h.Handle(ctx, r)
}

// WithAttrs keeps the lowering.
func (d libLog) WithAttrs(as []slog.Attr) slog.Handler { return libLog{d.h.WithAttrs(as)} }

// WithGroup keeps the lowering.
func (d libLog) WithGroup(g string) slog.Handler { return libLog{d.h.WithGroup(g)} }
