// Package acceptloop accepts connections until the listener is closed,
// riding out the errors a busy or flooded process gets from accept(2)
// (EMFILE, ENFILE, ECONNABORTED, ENOBUFS, ENOMEM) instead of giving up on
// the first: one flood that exhausts the descriptors must not leave a
// daemon alive but deaf once the flood is gone.
//
// It waits between failed accepts as net/http's Server does (5 ms,
// doubling to 1 s, back to 5 ms after a success), and logs a burst of
// failures twice, not once per failure: when it starts, with the error,
// and when accepting works again, with how many accepts failed.
package acceptloop

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sockmux/sockmux/internal/ratelog"
)

// The backoff between failed accepts, as net/http's Server.
const (
	MinDelay = 5 * time.Millisecond
	MaxDelay = time.Second
)

// Log messages, for the tests and log searches that look for them.
const (
	// MsgFailing starts a burst of accept errors; it carries "err", the
	// first of them.
	MsgFailing = "accept failing; retrying"
	// MsgRecovered ends a burst; it carries "failures", how many accepts
	// failed in it, and "lasted", how long it was.
	MsgRecovered = "accepting again"
	// MsgStopped ends the loop in the middle of a logged burst, so its
	// count is not lost.
	MsgStopped = "stopped accepting while accept was failing"
)

// Options say how Run logs and when it gives up.
type Options struct {
	// Log receives the burst lines (nothing is logged when nil).
	Log *slog.Logger
	// Limit, when set, holds back the first line of a burst that comes
	// within its interval of the listener's last one (and so the burst's
	// last line too): a peer that floods, lets go and floods again
	// cannot turn each round into two lines. The next line written says
	// how many bursts were left out ("suppressed").
	Limit *ratelog.Limiter
	// Key is the cause the limiter knows this listener's bursts by: by
	// default its address, so each listener has its own. Listeners whose
	// addresses a peer picks (its -R) should share one, so that a peer
	// with many listeners does not get a line for each.
	Key string
	// Attrs name the listener in every line, e.g. "accepting", "links",
	// "listen", "127.0.0.1:7000".
	Attrs []any
	// Stop and Done, when either is closed, end a backoff wait at once
	// and then the loop: the listener's owner (Stop) or the whole node
	// (Done) is going away and will close the listener, so no goroutine
	// is left waiting out a second for it. Either may be nil.
	Stop, Done <-chan struct{}
	// MinDelay and MaxDelay bound the backoff (the package's MinDelay and
	// MaxDelay when 0).
	MinDelay, MaxDelay time.Duration
}

// Run accepts connections on ln and hands each to handle, on Run's
// goroutine, until ln is closed (an error that is net.ErrClosed) or
// o.Stop or o.Done is. Any other accept error is taken as temporary: Run
// backs off and accepts again. handle owns the connection it is given.
func Run(ln net.Listener, o Options, handle func(net.Conn)) {
	l := New(ln, o)
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		handle(c)
	}
}

// Listener is a net.Listener whose Accept rides out temporary errors
// itself, for a server that gives up on them (net/http's Server stops on
// ENOBUFS and ENOMEM). It is safe for concurrent use.
type Listener struct {
	net.Listener
	o      Options
	key    string // the limiter's cause: o.Key, or the address
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	delay    time.Duration
	failures int
	logged   bool // whether this burst's first line was written
	began    time.Time
}

// New wraps ln.
func New(ln net.Listener, o Options) *Listener {
	if o.MinDelay <= 0 {
		o.MinDelay = MinDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = MaxDelay
	}
	key := o.Key
	if key == "" {
		key = "accept failing: " + ln.Addr().String()
	}
	return &Listener{Listener: ln, o: o, key: key, closed: make(chan struct{})}
}

// Accept returns the next connection, waiting out any error but the
// listener's closing; that, or o.Stop or o.Done closing, gives an error
// that is net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			l.succeeded()
			return c, nil
		}
		if errors.Is(err, net.ErrClosed) || l.stopped() {
			l.ended()
			return nil, l.closedError(err)
		}
		if !l.wait(l.failed(err)) {
			l.ended()
			return nil, l.closedError(nil)
		}
	}
}

// Close closes the listener and ends a backoff wait.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// succeeded ends a burst, logging its count if its start was logged.
func (l *Listener) succeeded() {
	l.mu.Lock()
	n, logged, began := l.failures, l.logged, l.began
	l.delay, l.failures, l.logged = 0, 0, false
	l.mu.Unlock()
	if n > 0 && logged {
		l.o.log(slog.LevelInfo, MsgRecovered, "failures", n, "lasted", time.Since(began).Round(time.Millisecond))
	}
}

// failed counts a failed accept, logs the start of a burst, and returns
// how long to wait before the next.
func (l *Listener) failed(err error) time.Duration {
	l.mu.Lock()
	first := l.failures == 0
	l.failures++
	if first {
		l.began = time.Now()
	}
	if l.delay == 0 {
		l.delay = l.o.MinDelay
	} else {
		l.delay = min(2*l.delay, l.o.MaxDelay)
	}
	d := l.delay
	l.mu.Unlock()
	if first {
		logged := l.o.first(l.key, err)
		l.mu.Lock()
		l.logged = logged
		l.mu.Unlock()
	}
	return d
}

// ended logs the count of a logged burst the listener's end cut short.
func (l *Listener) ended() {
	l.mu.Lock()
	n, logged := l.failures, l.logged
	l.failures, l.logged = 0, false
	l.mu.Unlock()
	if n > 0 && logged {
		l.o.log(slog.LevelInfo, MsgStopped, "failures", n)
	}
}

// closedError is what Accept returns once the listener is done: err when
// it already says so, or an *net.OpError that does.
func (l *Listener) closedError(err error) error {
	if err != nil && errors.Is(err, net.ErrClosed) {
		return err
	}
	a := l.Addr()
	return &net.OpError{Op: "accept", Net: a.Network(), Addr: a, Err: net.ErrClosed}
}

// first writes the line that starts a burst, through the limiter when
// there is one, and reports whether it was written.
func (o *Options) first(key string, err error) bool {
	if o.Log == nil {
		return false
	}
	args := append(append([]any(nil), o.Attrs...), "err", err)
	if o.Limit == nil {
		o.Log.Warn(MsgFailing, args...)
		return true
	}
	return o.Limit.Log(o.Log, slog.LevelWarn, key, MsgFailing, args...)
}

func (o *Options) log(level slog.Level, msg string, args ...any) {
	if o.Log != nil {
		o.Log.Log(context.Background(), level, msg, append(append([]any(nil), o.Attrs...), args...)...)
	}
}

// stopped reports whether the listener was closed, or o.Stop or o.Done.
func (l *Listener) stopped() bool {
	select {
	case <-l.closed:
		return true
	case <-l.o.Stop:
		return true
	case <-l.o.Done:
		return true
	default:
		return false
	}
}

// wait sleeps for d unless the listener is closed, or o.Stop or o.Done,
// first; it reports whether to accept again.
func (l *Listener) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.closed:
	case <-l.o.Stop:
	case <-l.o.Done:
	}
	return false
}
