package main

import (
	"context"
	"io"
	"sync"
	"testing"
)

// runBG runs "sockmux args..." in this process until the test ends, and
// returns its log.
func runBG(t testing.TB, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(cancel)
	log := new(syncBuffer)
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(ctx, args, io.Discard, log)
	}()
	return log
}
