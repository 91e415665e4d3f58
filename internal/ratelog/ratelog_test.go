package ratelog

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	l := New(time.Second)
	now := time.Unix(1000, 0)
	l.SetClock(func() time.Time { return now })
	for i := 0; i < 100; i++ {
		l.Warn(log, "stream refused", "i", i)
	}
	l.Warn(log, "other cause")
	if got := strings.Count(buf.String(), "stream refused"); got != 1 {
		t.Fatalf("%d lines of one cause within the interval, want 1:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), "other cause") {
		t.Fatal("a second cause was held back by the first")
	}
	now = now.Add(time.Second)
	buf.Reset()
	if !l.Warn(log, "stream refused", "i", 100) {
		t.Fatal("no line after the interval")
	}
	if !strings.Contains(buf.String(), "suppressed=99") {
		t.Fatalf("the line after the interval does not count what was left out: %s", buf.String())
	}
}

func TestLimiterBoundsCauses(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l := New(time.Second)
	for i := 0; i < 3*maxCauses; i++ {
		l.Log(log, slog.LevelWarn, string(rune('a'+i%26))+strings.Repeat("x", i), "m")
	}
	if len(l.causes) > maxCauses {
		t.Fatalf("%d causes kept, the bound is %d", len(l.causes), maxCauses)
	}
}
