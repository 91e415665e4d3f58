package carriers

import (
	"context"
	"log/slog"
	"time"
)

// Backoff of an accept loop after an error, as net/http's Server does it:
// 5 ms, doubling, up to 1 s.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// acceptBackoff paces an accept loop through a burst of errors: out of
// descriptors (EMFILE, ENFILE), of buffers or memory (ENOBUFS, ENOMEM), a
// connection aborted before it was taken (ECONNABORTED). Retrying at once
// would spin on what only time or a closed connection cures; giving up
// would turn a moment's exhaustion, which a flood of connections can
// cause at will, into a listener that is gone for good. A burst is logged
// twice however long it lasts: a warning at its first error, and a line
// counting its errors once an accept succeeds again.
type acceptBackoff struct {
	log      *slog.Logger
	what     string // "accepting tls connections"
	delay    time.Duration
	failures int
	since    time.Time
}

// wait sleeps the next delay of the burst err belongs to, and reports
// false when ctx ends first.
func (b *acceptBackoff) wait(ctx context.Context, err error) bool {
	if b.failures == 0 {
		b.delay, b.since = minAcceptBackoff, time.Now()
		b.log.Warn(b.what+" failed; retrying with backoff", "err", err)
	} else {
		b.delay = min(2*b.delay, maxAcceptBackoff)
	}
	b.failures++
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ok ends the burst, if there was one, saying how long it lasted.
func (b *acceptBackoff) ok() {
	if b.failures == 0 {
		return
	}
	b.log.Info(b.what+" recovered", "failures", b.failures, "after", time.Since(b.since).Round(time.Millisecond))
	b.failures = 0
}
