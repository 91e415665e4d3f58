package main

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// runBG runs "sockmux args..." in this process until the test ends, and
// returns its log.
func runBG(t testing.TB, args ...string) *syncBuffer {
	t.Helper()
	log, _ := runStoppable(t, args...)
	return log
}

// runStoppable is runBG with a stop that ends the command early (as
// SIGINT does) and returns once it has exited; the test's end stops it
// too.
func runStoppable(t testing.TB, args ...string) (log *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(cancel)
	log = new(syncBuffer)
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(ctx, args, io.Discard, log)
	}()
	return log, func() { cancel(); wg.Wait() }
}

// waitLine waits for a line of the log holding every one of parts, and
// returns it.
func waitLine(t testing.TB, log *syncBuffer, parts ...string) string {
	t.Helper()
	return waitLineFrom(t, log, 0, parts...)
}

// waitLineFrom is waitLine for a line logged past the first from bytes.
func waitLineFrom(t testing.TB, log *syncBuffer, from int, parts ...string) string {
	t.Helper()
	return waitLineWithin(t, log, from, 15*time.Second, parts...)
}

// waitLineWithin is waitLineFrom with a limit of its own.
func waitLineWithin(t testing.TB, log *syncBuffer, from int, limit time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		text, next := log.written()
		if line, ok := findLine(text[from:], parts...); ok {
			return line
		}
		select {
		case <-next:
		case <-deadline.C:
			t.Fatalf("no line with %q in the log within %v:\n%s", parts, limit, log.String()[from:])
		}
	}
}

// echoThroughFwd passes a checksummed megabyte through the forward on
// addr to the echo server and back.
func echoThroughFwd(t testing.TB, addr string, seed uint64) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A deaf listener still completes the dial (the kernel's backlog
	// does); the deadline makes it fail the test instead of hanging it.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := testkit.EchoCheck(c, seed, 1<<20); err != nil {
		t.Fatalf("through %s: %v", addr, err)
	}
}

// findLine returns the first line of log that holds every one of parts.
func findLine(log string, parts ...string) (string, bool) {
	for line := range strings.Lines(log) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return line, true
		}
	}
	return "", false
}
