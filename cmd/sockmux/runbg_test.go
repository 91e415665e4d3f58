package main

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		if line, ok := findLine(log.String(), parts...); ok {
			return line
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q in the log:\n%s", parts, log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
