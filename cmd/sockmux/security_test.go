package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestListenRefusesStrangers: listening for links beyond loopback needs a
// key or client certificates, unless --insecure says otherwise.
func TestListenRefusesStrangers(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("s3cret, sixteen bytes and more\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		start bool // it starts (and is stopped by the test)
	}{
		{"all addresses, no key", []string{"listen", "0.0.0.0:0"}, false},
		{"all addresses, --insecure", []string{"listen", "--insecure", "0.0.0.0:0"}, true},
		{"all addresses, key", []string{"listen", "--key-file", keyFile, "0.0.0.0:0"}, true},
		{"loopback, no key", []string{"listen", "127.0.0.1:0"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			ctx, cancel := context.WithCancel(context.Background())
			var log syncBuffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, tc.args, io.Discard, &log) }()
			if !tc.start {
				if code := <-done; code != 2 || !strings.Contains(log.String(), "--insecure") {
					t.Fatalf("exit %d, stderr %q: want 2 and a message naming --insecure", code, log.String())
				}
				cancel()
				return
			}
			waitLog(t, &log, `msg="listening for links"`)
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("exit %d: %s", code, log.String())
			}
		})
	}
}

func TestSecurityFlagErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("fifteen bytes!!\n"), 0o600)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"connect", "--key-file", filepath.Join(dir, "missing"), "127.0.0.1:1"}, "missing"},
		{[]string{"connect", "--key-file", empty, "127.0.0.1:1"}, "empty"},
		{[]string{"connect", "--key-file", short, "127.0.0.1:1"}, "sockmux keygen --psk"},
		{[]string{"listen", "--allow-target", "10.0.0.0/33:*", "127.0.0.1:0"}, `"10.0.0.0/33:*"`},
		{[]string{"listen", "--allow-target", "host", "127.0.0.1:0"}, `"host"`},
		{[]string{"listen", "--max-streams", "0", "127.0.0.1:0"}, "--max-streams"},
		{[]string{"listen", "--drain", "-1s", "127.0.0.1:0"}, "--drain"},
		{[]string{"connect", "tls://127.0.0.1:1"}, "tls"},
		{[]string{"listen", "exec:true"}, "exec"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var errOut bytes.Buffer
			if code := run(context.Background(), tc.args, io.Discard, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q: want 2 and %s named", code, errOut.String(), tc.want)
			}
		})
	}
}

// TestWrongFingerprint: connect with a pin that does not match never
// brings the link up, and says why.
func TestWrongFingerprint(t *testing.T) {
	testkit.CheckLeaks(t)
	link := testkit.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var llog, clog syncBuffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		run(ctx, []string{"listen", "--state-dir", t.TempDir(), "tls://" + link}, io.Discard, &llog)
	}()
	waitLog(t, &llog, `msg="listening for links"`)
	wrong := strings.Repeat("ab", 32)
	go func() {
		defer wg.Done()
		run(ctx, []string{"connect", "--tls-fingerprint", wrong, "tls://" + link}, io.Discard, &clog)
	}()
	waitLog(t, &clog, `msg="link dial failed"`)
	if !strings.Contains(clog.String(), wrong) || !strings.Contains(clog.String(), "fingerprint") {
		t.Fatalf("the dial failure does not name the fingerprints:\n%s", clog.String())
	}
	if strings.Contains(clog.String(), `msg="link up"`) {
		t.Fatal("a link came up with a wrong fingerprint")
	}
	cancel()
	wg.Wait()
}

// TestSIGHUPRedials: SIGHUP to connect redials at once.
func TestSIGHUPRedials(t *testing.T) {
	testkit.CheckLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"connect", testkit.FreeAddr(t)}, io.Discard, &log) }()
	waitLog(t, &log, `msg="link redial scheduled"`)
	sendHUP(t)
	waitLog(t, &log, `msg="redialling now"`)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}
