package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestCascade: connect reaches the final peer through two relays, each
// link riding on a stream of the one before, all authenticated with the
// key, and carries a checksummed transfer; the first relay reached over
// tcp:// or over ws://.
func TestCascade(t *testing.T) {
	for _, first := range []struct{ name, scheme, path string }{{"tcp", "", ""}, {"ws", "ws://", "/relay"}} {
		t.Run(first.name, func(t *testing.T) { testCascade(t, first.scheme, first.path) })
	}
}

func testCascade(t *testing.T, scheme, path string) {
	testkit.CheckLeaks(t)
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("end to end, sixteen bytes and more"), 0o600); err != nil {
		t.Fatal(err)
	}
	echo := testkit.Echo(t)
	final, relay1, relay2, fwd := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	logs := map[string]*syncBuffer{}
	start := func(name string, args ...string) {
		logs[name] = &syncBuffer{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := run(ctx, args, io.Discard, logs[name]); code != 0 {
				t.Errorf("%s exited %d:\n%s", name, code, logs[name].String())
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	for _, p := range []struct{ name, addr string }{{"final", final}, {"relay1", scheme + relay1 + path}, {"relay2", relay2}} {
		start(p.name, "listen", "--drain", "0s", "--key-file", key, p.addr)
		waitLog(t, logs[p.name], `msg="listening for links"`)
	}
	start("client", "connect", "--drain", "0s", "--key-file", key, "--via", scheme+relay1+path, "--via", relay2, "-L", fwd+":"+echo, final)
	waitLog(t, logs["client"], `msg="link up" peer="`+final+` via `+relay2+`"`)
	c, err := net.Dial("tcp", fwd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testkit.EchoRoundTrip(t, c, 3, 16<<20)
	// Each relay carried a stream to the next hop and opened nothing else.
	for _, name := range []string{"relay1", "relay2", "final"} {
		if !strings.Contains(logs[name].String(), "authenticated=true") {
			t.Errorf("%s's link was not authenticated:\n%s", name, logs[name].String())
		}
	}
}
