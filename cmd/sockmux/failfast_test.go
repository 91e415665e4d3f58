package main

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// keyFile writes a key file for the test and returns its path.
func keyFile(t testing.TB, key string) string {
	t.Helper()
	path := t.TempDir() + "/key"
	if err := os.WriteFile(path, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runFor runs "sockmux args..." in this process and returns its exit code
// and log once it exits by itself; one still running after limit fails
// the test.
func runFor(t *testing.T, limit time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log syncBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, io.Discard, &log) }()
	select {
	case c := <-code:
		return c, log.String()
	case <-time.After(limit): // hang guard
		cancel()
		<-code
		t.Fatalf("sockmux %s still running after %v:\n%s", strings.Join(args, " "), limit, log.String())
		return 0, ""
	}
}

// TestConnectFailsFast: like ssh, an interactive connect whose first link
// fails for a reason retrying cannot fix, or that gets no link within
// --connect-timeout or --max-retries, exits 1 with the reason; --persist
// keeps retrying.
func TestConnectFailsFast(t *testing.T) {
	testkit.CheckLeaks(t)
	link := testkit.FreeAddr(t)
	runBG(t, "listen", "--drain", "0s", "--key-file", keyFile(t, "the listener's key, 32 bytes long"), link)
	waitListening(t, link)
	wrongKey := keyFile(t, "another key entirely, 32 bytes!!")
	relay := testkit.FreeAddr(t) // keyless: a keyed hop through it is refused
	runBG(t, "listen", "--drain", "0s", relay)
	waitListening(t, relay)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong key", []string{"connect", "--key-file", wrongKey, link}, "pre-shared keys do not match"},
		{"no key", []string{"connect", link}, "requires a pre-shared key"},
		{"connect timeout", []string{"connect", "--connect-timeout", "100ms", testkit.FreeAddr(t)}, "connect timeout"},
		{"max retries", []string{"connect", "--max-retries", "1", testkit.FreeAddr(t)}, "2 attempts failed in a row"},
		{"key refused at a relay", []string{"connect", "--key-file", wrongKey, "--via", relay, link}, "relay failed: --via " + relay + " (hop 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, log := runFor(t, 20*time.Second, tc.args...)
			if code != 1 || !strings.Contains(log, tc.want) {
				t.Fatalf("exit %d, want 1 with %q:\n%s", code, tc.want, log)
			}
		})
	}
	t.Run("persist", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var log syncBuffer
		code := make(chan int, 1)
		go func() {
			code <- run(ctx, []string{"connect", "--persist", "--key-file", wrongKey, link}, io.Discard, &log)
		}()
		// It redials after the refusal, and again: it has not given up.
		waitCount(t, &log, `msg="link redial scheduled"`, 2)
		cancel()
		if c := <-code; c != 0 {
			t.Fatalf("exit %d after being stopped, want 0:\n%s", c, log.String())
		}
	})
}

// waitListening waits until addr accepts connections.
func waitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listening on %s: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCount waits until the log holds want n times.
func waitCount(t testing.TB, b *syncBuffer, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(b.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %s in log, want %d:\n%s", strings.Count(b.String(), want), want, n, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
