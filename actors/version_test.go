package actors

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"sockmux/carriers"
	"sockmux/engine"
	"sockmux/internal/testkit"
)

// TestVersionMismatch links a node that speaks only version 2 to one that
// speaks only version 1: both refuse, and both logs say which versions each
// side speaks.
func TestVersionMismatch(t *testing.T) {
	testkit.CheckLeaks(t)
	logA, logB := testkit.NewRecorder(), testkit.NewRecorder()
	a, err := NewNode(Config{Logger: slog.New(logA)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.Serve(ln)
	b, err := NewNode(Config{Logger: slog.New(logB), Backoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	b.env.minVersion, b.env.maxVersion = 2, 2
	d, _ := carriers.NewDialer(ln.Addr().String())
	b.Connect(d)
	for name, rec := range map[string]*testkit.Recorder{"v1 listener": logA, "v2 dialer": logB} {
		r := rec.Wait(t, 10*time.Second, name+" refusing the handshake", func(r testkit.Record) bool {
			return r.Msg == "link handshake failed"
		})
		err, _ := r.Attrs["err"].(error)
		if !errors.Is(err, engine.ErrVersion) {
			t.Errorf("%s: handshake error %v, want ErrVersion", name, err)
		}
	}
	if a.Stats().LinksUp.Load() != 0 || b.Stats().LinksUp.Load() != 0 {
		t.Error("a link came up between different versions")
	}
}
