package bench

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// newEmulator starts an emulator for the test and closes it at the end.
func newEmulator(t testing.TB, target string, delay time.Duration, rate int64) *Emulator {
	t.Helper()
	e, err := NewEmulator(target, delay, rate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// within fails unless got is within ±40% of want: the emulator's contract
// is timing, checked against the clock, with room for a loaded machine.
func within(t testing.TB, what string, got, want time.Duration) {
	t.Helper()
	// Faster than want would be the emulator failing to delay or cap; the
	// upper bound is looser, as a loaded machine's scheduler only ever adds.
	if got < want*6/10 || got > want*25/10 {
		t.Errorf("%s took %v, want %v (from -40%% to +150%%)", what, got, want)
	} else {
		t.Logf("%s took %v (want %v)", what, got, want)
	}
}

// TestEmulatorDelay: a new connection's first answer takes two round trips
// (the handshake's, then the request's), a later one one round trip.
func TestEmulatorDelay(t *testing.T) {
	testkit.CheckLeaks(t)
	for _, delay := range []time.Duration{20 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			e := newEmulator(t, testkit.Echo(t), delay, 0)
			msg := []byte("ping")
			start := time.Now()
			c, err := net.Dial("tcp", e.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip := func() {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
					t.Fatal(err)
				}
			}
			roundTrip()
			within(t, "first answer", time.Since(start), 4*delay)
			start = time.Now()
			roundTrip()
			within(t, "round trip", time.Since(start), 2*delay)
		})
	}
}

// TestEmulatorRate: each direction of a connection is capped at the rate.
func TestEmulatorRate(t *testing.T) {
	testkit.CheckLeaks(t)
	const rate, size = 4_000_000, 1_000_000
	want := time.Duration(size) * time.Second / rate
	for _, tc := range []struct {
		name string
		move func(t *testing.T, addr string)
	}{
		{"upload", func(t *testing.T, addr string) {
			if err := Push(addr, size); err != nil {
				t.Fatal(err)
			}
		}},
		{"download", func(t *testing.T, addr string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			n, err := io.Copy(io.Discard, c)
			if err != nil || n != size {
				t.Fatalf("read %d bytes (%v), want %d", n, err, size)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var target string
			if tc.name == "upload" {
				sink, err := NewSink()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(sink.Close)
				target = sink.Addr()
			} else {
				target = testkit.Serve(t, func(c net.Conn) {
					_, _ = c.Write(make([]byte, size))
				})
			}
			e := newEmulator(t, target, time.Millisecond, rate)
			start := time.Now()
			tc.move(t, e.Addr())
			within(t, tc.name, time.Since(start), want)
		})
	}
}

// TestEmulatorCarries: what goes through arrives intact and in order both
// ways, with the half-close passed on, with and without delay and cap.
func TestEmulatorCarries(t *testing.T) {
	testkit.CheckLeaks(t)
	for _, tc := range []struct {
		name  string
		delay time.Duration
		rate  int64
	}{
		{"plain", 0, 0},
		{"delay and rate", 2 * time.Millisecond, 50_000_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEmulator(t, testkit.Echo(t), tc.delay, tc.rate)
			c, err := net.Dial("tcp", e.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			testkit.EchoRoundTrip(t, c, 7, 2<<20)
			c.Close()
			e.Close()
			if h := e.Held(); h != 0 {
				t.Errorf("the emulator still holds %d bytes", h)
			}
		})
	}
}

// TestEmulatorRefused: a target that refuses makes the client's connection
// fail, after the round trip it would take.
func TestEmulatorRefused(t *testing.T) {
	testkit.CheckLeaks(t)
	e := newEmulator(t, testkit.FreeAddr(t), time.Millisecond, 0)
	c, err := net.Dial("tcp", e.Addr())
	if errors.Is(err, syscall.ECONNRESET) {
		// The emulator accepted, saw the refusal and reset the client
		// before its connect returned (a loaded machine): the failure
		// arrived sooner, which is what this test asks.
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a refused connection: %v, want EOF or reset", err)
	}
}

// TestEmulatorClose: closing the emulator ends what it relays and every
// goroutine it started.
func TestEmulatorClose(t *testing.T) {
	testkit.CheckLeaks(t)
	sink, err := NewSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	e, err := NewEmulator(sink.Addr(), time.Millisecond, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Push(e.Addr(), 64<<20) }()
	<-sink.Await(1) // bytes are moving
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("a push through a closed emulator succeeded")
	}
	if _, err := net.Dial("tcp", e.Addr()); err == nil {
		t.Fatal("the emulator still accepts")
	}
}
