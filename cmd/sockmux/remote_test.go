package main

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestExitOnForwardFailure: a -R the peer refuses makes connect exit 1
// with the reason, when asked to.
func TestExitOnForwardFailure(t *testing.T) {
	testkit.CheckLeaks(t)
	link := testkit.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var llog, clog syncBuffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(ctx, []string{"listen", "--drain", "0s", link}, io.Discard, &llog)
	}()
	waitLog(t, &llog, `msg="listening for links"`)
	code := run(ctx, []string{"connect", "--exit-on-forward-failure", "-R", "0.0.0.0:0:127.0.0.1:9", link}, io.Discard, &clog)
	cancel()
	wg.Wait()
	if code != 1 || !strings.Contains(clog.String(), "--allow-listen") {
		t.Fatalf("exit %d; want 1 and the peer's reason naming --allow-listen:\n%s", code, clog.String())
	}
	if !strings.Contains(llog.String(), `msg="reverse forward refused"`) {
		t.Fatalf("the listening side did not log the refusal:\n%s", llog.String())
	}
}
