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
