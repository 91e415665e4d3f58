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

// firstHop is how TestCascade reaches its first relay: the carrier's
// scheme and path, and the TLS flags of the relay and of connect (made
// from the relay's log).
type firstHop struct {
	name, scheme, path string
	listen             func(t *testing.T) []string
	connect            func(t *testing.T, relayLog string) []string
}

// TestCascade: connect reaches the final peer through two relays, each
// link riding on a stream of the one before, all authenticated with the
// key, and carries a checksummed transfer; the first relay reached over
// tcp://, ws:// or quic://.
func TestCascade(t *testing.T) {
	none := func(*testing.T) []string { return nil }
	for _, first := range []firstHop{
		{"tcp", "", "", none, func(*testing.T, string) []string { return nil }},
		{"ws", "ws://", "/relay", none, func(*testing.T, string) []string { return nil }},
		{"quic", "quic://", "",
			func(t *testing.T) []string { return []string{"--state-dir", t.TempDir()} },
			func(t *testing.T, log string) []string {
				m := fingerprintRE.FindStringSubmatch(log)
				if m == nil {
					t.Fatalf("the relay logged no certificate fingerprint:\n%s", log)
				}
				return []string{"--tls-fingerprint", m[1]}
			}},
	} {
		t.Run(first.name, func(t *testing.T) { testCascade(t, first) })
	}
}

func testCascade(t *testing.T, first firstHop) {
	scheme, path := first.scheme, first.path
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
	for _, p := range []struct {
		name, addr string
		extra      []string
	}{{"final", final, nil}, {"relay1", scheme + relay1 + path, first.listen(t)}, {"relay2", relay2, nil}} {
		start(p.name, append(append([]string{"listen", "--drain", "0s", "--key-file", key}, p.extra...), p.addr)...)
		waitLog(t, logs[p.name], `msg="listening for links"`)
	}
	start("client", append(append([]string{"connect", "--drain", "0s", "--key-file", key}, first.connect(t, logs["relay1"].String())...),
		"--via", scheme+relay1+path, "--via", relay2, "-L", fwd+":"+echo, final)...)
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
