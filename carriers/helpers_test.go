package carriers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a slog.Handler that keeps what is logged, and tells each
// record on a channel when one is asked for.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
	attrs   []slog.Attr
	notify  chan slog.Record
}

func newRecorder(buffered int) *recorder {
	return &recorder{notify: make(chan slog.Record, buffered)}
}

func (r *recorder) logger() *slog.Logger { return slog.New(r) }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(r.attrs...)
	r.mu.Lock()
	r.records = append(r.records, rec)
	r.mu.Unlock()
	select {
	case r.notify <- rec:
	default:
	}
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{records: nil, attrs: append(append([]slog.Attr(nil), r.attrs...), as...), notify: r.notify}
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// attr is the value of attribute key of rec, "" when absent.
func attr(rec slog.Record, key string) string {
	v := ""
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// shortTempDir is a temporary directory with a short path (a unix socket
// path must fit in 108 bytes), removed by t.Cleanup.
func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "cr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// listen is Listen that fails the test, closed by t.Cleanup.
func listen(t testing.TB, addr string, opts ...Option) net.Listener {
	t.Helper()
	ln, err := Listen(addr, opts...)
	if err != nil {
		t.Fatalf("Listen(%q): %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptAsync runs one Accept in a goroutine; the channel gets the conn
// (closed by t.Cleanup) or the error.
func acceptAsync(t testing.TB, ln net.Listener) <-chan acceptResult {
	t.Helper()
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := ln.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

type acceptResult struct {
	c   net.Conn
	err error
}

// listenerPipe is a nettest.MakePipe for a carrier kind with a listener:
// it listens on addr, dials the address dialTo gives for the listener, and
// returns both ends, with a stop that closes them and the listener.
func listenerPipe(t testing.TB, addr string, dialTo func(net.Listener) string, listen, dial []Option) func() (net.Conn, net.Conn, func(), error) {
	return func() (net.Conn, net.Conn, func(), error) {
		ln, err := Listen(addr, listen...)
		if err != nil {
			return nil, nil, nil, err
		}
		d, err := NewDialer(dialTo(ln), dial...)
		if err != nil {
			ln.Close()
			return nil, nil, nil, err
		}
		ach := acceptAsync(t, ln)
		c1, err := d.Dial(context.Background())
		a := <-ach
		if err != nil || a.err != nil {
			ln.Close()
			return nil, nil, nil, errors.Join(err, a.err)
		}
		return c1, a.c, func() { c1.Close(); a.c.Close(); ln.Close() }, nil
	}
}

// dialPair dials addr with d and accepts on ln: the two ends of one
// carrier. Both are closed by t.Cleanup.
func dialPair(t testing.TB, ln net.Listener, d Dialer) (dialled, accepted net.Conn) {
	t.Helper()
	ach := acceptAsync(t, ln)
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial %s: %v", d, err)
	}
	t.Cleanup(func() { c.Close() })
	a := <-ach
	if a.err != nil {
		t.Fatalf("Accept: %v", a.err)
	}
	t.Cleanup(func() { a.c.Close() })
	return c, a.c
}

// mustDialer is NewDialer that fails the test.
func mustDialer(t testing.TB, addr string, opts ...Option) Dialer {
	t.Helper()
	d, err := NewDialer(addr, opts...)
	if err != nil {
		t.Fatalf("NewDialer(%q): %v", addr, err)
	}
	return d
}

// roundTrip writes msg on a and reads it back on b, then the other way.
func roundTrip(t testing.TB, a, b net.Conn, msg string) {
	t.Helper()
	for _, p := range [][2]net.Conn{{a, b}, {b, a}} {
		errc := make(chan error, 1)
		go func() {
			_, err := p[0].Write([]byte(msg))
			errc <- err
		}()
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(p[1], buf); err != nil {
			t.Fatalf("read: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
		if string(buf) != msg {
			t.Fatalf("got %q, want %q", buf, msg)
		}
	}
}
