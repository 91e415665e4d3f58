// Package testkit owns what the tests share: loopback servers, payloads, a
// cuttable proxy, a structured log recorder and the leak checks every
// end-to-end test runs. It does not import the actors, so their internal
// tests can use it too; actors/testpair_test.go builds linked nodes on top.
package testkit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sockmux/sockmux/engine"
)

// Serve runs handle for every connection accepted on a loopback port until
// the test ends, and returns the address.
func Serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Echo starts an echo server: it writes back what it reads and closes its
// write side at the end of the input.
func Echo(t testing.TB) string {
	return Serve(t, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	})
}

// FreeAddr returns a loopback address nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// FreeWildcardAddr returns a loopback address whose port nothing listens
// on at any address, for a test that listens on 0.0.0.0 (a port free on
// 127.0.0.1 may be taken on 127.0.0.11).
func FreeWildcardAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return net.JoinHostPort("127.0.0.1", port)
}

// Payload is n deterministic pseudo-random bytes.
func Payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Stream writes size bytes of seeded data into w in chunks, and returns
// their SHA-256.
func Stream(w io.Writer, seed uint64, size int) ([32]byte, error) {
	h := sha256.New()
	chunk := Payload(seed, 256<<10)
	for sent := 0; sent < size; {
		n := min(len(chunk), size-sent)
		// Vary the chunk per round so a repeated block would be caught.
		chunk[0] ^= byte(sent >> 18)
		if _, err := w.Write(chunk[:n]); err != nil {
			return [32]byte{}, err
		}
		h.Write(chunk[:n])
		sent += n
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// EchoRoundTrip sends size bytes through conn to an echo server while
// reading the echo, and fails unless what came back is what went out. It
// must run on the test's goroutine; others use EchoCheck.
func EchoRoundTrip(t testing.TB, conn net.Conn, seed uint64, size int) {
	t.Helper()
	if err := EchoCheck(conn, seed, size); err != nil {
		t.Fatal(err)
	}
}

// EchoCheck sends size bytes through conn to an echo server while reading
// the echo, and returns an error unless what came back is what went out.
func EchoCheck(conn net.Conn, seed uint64, size int) error {
	sent := make(chan [32]byte, 1)
	errc := make(chan error, 1)
	go func() {
		sum, err := Stream(conn, seed, size)
		if err == nil {
			err = conn.(interface{ CloseWrite() error }).CloseWrite() // a TCP connection, a sockmux.Stream
		}
		errc <- err
		sent <- sum
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, conn)
	if werr := <-errc; werr != nil {
		return fmt.Errorf("writing: %w", werr)
	}
	if rerr != nil {
		return fmt.Errorf("reading echo: %w", rerr)
	}
	want := <-sent
	if n != int64(size) {
		return fmt.Errorf("echo returned %d bytes, want %d", n, size)
	}
	if got := h.Sum(nil); string(got) != string(want[:]) {
		return fmt.Errorf("echo of %d bytes came back different (sha256 %x, want %x)", size, got, want)
	}
	return nil
}

// Record is one captured log record.
type Record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]any
}

// Recorder is a slog.Handler that keeps every record, for tests that check
// what was logged.
type Recorder struct {
	mu      sync.Mutex
	recs    []Record
	changed chan struct{}
	attrs   []slog.Attr
	root    *Recorder
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	r := &Recorder{changed: make(chan struct{})}
	r.root = r
	return r
}

func (r *Recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *Recorder) Handle(_ context.Context, rec slog.Record) error {
	out := Record{Level: rec.Level, Msg: rec.Message, Attrs: map[string]any{}}
	for _, a := range r.attrs {
		out.Attrs[a.Key] = a.Value.Any()
	}
	rec.Attrs(func(a slog.Attr) bool {
		out.Attrs[a.Key] = a.Value.Any()
		return true
	})
	root := r.root
	root.mu.Lock()
	root.recs = append(root.recs, out)
	close(root.changed)
	root.changed = make(chan struct{})
	root.mu.Unlock()
	return nil
}

func (r *Recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &Recorder{root: r.root, attrs: append(append([]slog.Attr(nil), r.attrs...), as...)}
}

func (r *Recorder) WithGroup(string) slog.Handler { return r }

// Wait returns the first record for which match is true, waiting up to
// limit for it to be logged.
func (r *Recorder) Wait(t testing.TB, limit time.Duration, what string, match func(Record) bool) Record {
	t.Helper()
	return r.WaitN(t, limit, what, 1, match)
}

// WaitN waits until n records match, and returns the n-th. match must
// not keep state: every record is offered to it again on each change.
func (r *Recorder) WaitN(t testing.TB, limit time.Duration, what string, n int, match func(Record) bool) Record {
	t.Helper()
	deadline := time.After(limit)
	for {
		r.mu.Lock()
		seen := 0
		for _, rec := range r.recs {
			if match(rec) {
				if seen++; seen == n {
					r.mu.Unlock()
					return rec
				}
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %d log records: %s", n, what)
			return Record{}
		}
	}
}

// Records returns what was logged so far.
func (r *Recorder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.recs...)
}

// Dial connects to a forward's listening address.
func Dial(t testing.TB, addr net.Addr) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// SharedWorkerFunc is the function of the library's shared actor system's
// workers (actors.SharedSystem), which live as long as the process:
// CheckLeaks ignores them. (This package cannot import actors, whose
// tests use it; TestSharedWorkerFunc checks the name.)
const SharedWorkerFunc = "github.com/sockmux/sockmux/actors.sharedWorker"

// CheckLeaks registers, to run after everything else the test cleans up,
// checks that no goroutine is left and every pooled buffer taken during
// the test was returned.
func CheckLeaks(t testing.TB) {
	t.Helper()
	before := engine.PoolOutstanding()
	existing := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		if err := goleak.Find(existing,
			goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottleWithLogger.func1"),
			goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1"),
			goleak.IgnoreAnyFunction(SharedWorkerFunc)); err != nil {
			t.Errorf("goroutines left behind: %v", err)
		}
		// Buffers a stream being torn down still holds come back within
		// moments, as goroutines do for goleak: retry before calling it a
		// leak. Fewer than before is not one: an earlier test's stragglers
		// came back during this one.
		got := engine.PoolOutstanding()
		for wait := time.Millisecond; got > before && wait < 2*time.Second; wait *= 2 {
			time.Sleep(wait)
			got = engine.PoolOutstanding()
		}
		if got > before {
			t.Errorf("pooled buffers: %d outstanding after the test, %d before", got, before)
		}
	})
}

// IsClosed reports whether err is what reading a connection closed by the
// other end gives.
func IsClosed(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)
}

// Greeter serves a fixed greeting to every connection and closes it, so a
// test can tell which target a connection reached; it returns the address.
func Greeter(t testing.TB, greeting string) string {
	return Serve(t, func(c net.Conn) { c.Write([]byte(greeting)) })
}

// Greeting reads what the server at addr says, to its end.
func Greeting(t testing.TB, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
