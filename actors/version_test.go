package actors

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestVersionMismatch links a node that speaks only version 2 to one that
// speaks only version 1: both refuse, and both logs say which versions each
// side speaks.
func TestVersionMismatch(t *testing.T) {
	logA, logB := testkit.NewRecorder(), testkit.NewRecorder()
	a, b, _ := nodePair(t, Config{Logger: slog.New(logA)}, Config{Logger: slog.New(logB), Backoff: time.Hour},
		func(e *env) { e.minVersion, e.maxVersion = 2, 2 })
	for name, rec := range map[string]*testkit.Recorder{"v1 listener": logA, "v2 dialer": logB} {
		r := rec.Wait(t, 10*time.Second, name+" refusing the handshake", func(r testkit.Record) bool {
			return r.Msg == "link handshake failed"
		})
		err, _ := r.Attrs["err"].(error)
		if !errors.Is(err, engine.ErrVersion) {
			t.Errorf("%s: handshake error %v, want ErrVersion", name, err)
		}
	}
	if a.Stats().linksUp.Load() != 0 || b.Stats().linksUp.Load() != 0 {
		t.Error("a link came up between different versions")
	}
}
