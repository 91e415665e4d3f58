// Package ratelog keeps a hostile peer from turning the log into its
// amplifier: a line repeated for the same cause is written at most once
// per interval, and the next one written says how many were left out.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is how often a line of one cause may be written.
const DefaultEvery = 10 * time.Second

// maxCauses bounds the table of causes; keys are meant to be constant
// messages, so a full table means a caller keyed by something a peer
// chose, and the oldest cause is forgotten rather than the table grown.
const maxCauses = 1024

// Limiter writes at most one line per cause per interval. It is safe for
// concurrent use.
type Limiter struct {
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	causes map[string]*cause
}

type cause struct {
	last       time.Time
	suppressed int
}

// New returns a limiter that writes a cause's line at most once per every
// (DefaultEvery when 0).
func New(every time.Duration) *Limiter {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Limiter{every: every, now: time.Now, causes: make(map[string]*cause)}
}

// SetClock replaces the limiter's clock (tests).
func (l *Limiter) SetClock(now func() time.Time) { l.now = now }

// Log writes msg to log at level unless a line of cause key was written
// within the interval; a line written after some were left out carries
// "suppressed", their count. It reports whether the line was written.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, key, msg string, args ...any) bool {
	if !log.Enabled(context.Background(), level) {
		return false
	}
	now := l.now()
	l.mu.Lock()
	c := l.causes[key]
	if c == nil {
		if len(l.causes) >= maxCauses {
			l.evict()
		}
		c = &cause{}
		l.causes[key] = c
	} else if now.Sub(c.last) < l.every {
		c.suppressed++
		l.mu.Unlock()
		return false
	}
	c.last = now
	n := c.suppressed
	c.suppressed = 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(context.Background(), level, msg, args...)
	return true
}

// Warn is Log at warning level, keyed by the message itself.
func (l *Limiter) Warn(log *slog.Logger, msg string, args ...any) bool {
	return l.Log(log, slog.LevelWarn, msg, msg, args...)
}

// evict forgets the cause written longest ago; l.mu is held.
func (l *Limiter) evict() {
	var oldest string
	var t time.Time
	first := true
	for k, c := range l.causes {
		if first || c.last.Before(t) {
			oldest, t, first = k, c.last, false
		}
	}
	delete(l.causes, oldest)
}
