package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestMain lets the test binary stand in for the sockmux command, so the
// exec carrier can run "sockmux stdio" without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("SOCKMUX_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// carrierRow is one carrier kind: the arguments of listen (none: the far
// side is started by connect itself) and of connect, made once listen is up
// (its log may hold what connect needs, such as a fingerprint).
type carrierRow struct {
	name    string
	striped int // carriers the link must have before the body runs (0: one)
	// wantLog, when set, is what connect must log before the body runs.
	wantLog string
	listen  func(t *testing.T, link string) []string
	connect func(t *testing.T, link string, listenLog string) []string
}

var fingerprintRE = regexp.MustCompile(`fingerprint=([0-9a-fA-F:]+)`)

func carrierRows(t *testing.T) []carrierRow {
	pki := testkit.NewPKI(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("a key for the link"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []carrierRow{
		{"tcp", 0, "",
			func(t *testing.T, link string) []string { return []string{link} },
			func(t *testing.T, link, _ string) []string { return []string{link} }},
		{"tls-fingerprint", 0, "",
			func(t *testing.T, link string) []string {
				return []string{"--state-dir", filepath.Join(dir, "state"), "tls://" + link}
			},
			func(t *testing.T, link, log string) []string {
				m := fingerprintRE.FindStringSubmatch(log)
				if m == nil {
					t.Fatalf("listen logged no certificate fingerprint:\n%s", log)
				}
				return []string{"--tls-fingerprint", m[1], "tls://" + link}
			}},
		{"tls-ca-and-client-certificate", 0, "",
			func(t *testing.T, link string) []string {
				return []string{"--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-client-ca", pki.CA, "tls://" + link}
			},
			func(t *testing.T, link, _ string) []string {
				return []string{"--tls-ca", pki.CA, "--tls-cert", pki.ClientCert, "--tls-key", pki.ClientKey, "tls://" + link}
			}},
		{"tcp-striped-over-3", 3, "",
			func(t *testing.T, link string) []string { return []string{link} },
			func(t *testing.T, link, _ string) []string { return []string{"--carriers", "3", link} }},
		{"tls-client-certificate-striped-over-4", 4, "",
			func(t *testing.T, link string) []string {
				return []string{"--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-client-ca", pki.CA, "tls://" + link}
			},
			func(t *testing.T, link, _ string) []string {
				return []string{"--carriers", "4", "--tls-ca", pki.CA, "--tls-cert", pki.ClientCert, "--tls-key", pki.ClientKey, "tls://" + link}
			}},
		{"ws", 0, "",
			func(t *testing.T, link string) []string { return []string{"ws://" + link + "/sockmux"} },
			func(t *testing.T, link, _ string) []string { return []string{"ws://" + link + "/sockmux"} }},
		{"ws-key", 0, "",
			func(t *testing.T, link string) []string { return []string{"--key-file", key, "ws://" + link + "/k"} },
			func(t *testing.T, link, _ string) []string { return []string{"--key-file", key, "ws://" + link + "/k"} }},
		{"ws-striped-over-3", 3, "",
			func(t *testing.T, link string) []string { return []string{"ws://" + link + "/"} },
			func(t *testing.T, link, _ string) []string { return []string{"--carriers", "3", "ws://" + link} }},
		{"wss-fingerprint", 0, "",
			func(t *testing.T, link string) []string {
				return []string{"--state-dir", filepath.Join(dir, "state-wss"), "wss://" + link + "/t"}
			},
			func(t *testing.T, link, log string) []string {
				m := fingerprintRE.FindStringSubmatch(log)
				if m == nil {
					t.Fatalf("listen logged no certificate fingerprint:\n%s", log)
				}
				return []string{"--tls-fingerprint", m[1], "wss://" + link + "/t"}
			}},
		{"wss-client-certificate-striped-over-2", 2, "",
			func(t *testing.T, link string) []string {
				return []string{"--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-client-ca", pki.CA, "wss://" + link + "/t"}
			},
			func(t *testing.T, link, _ string) []string {
				return []string{"--carriers", "2", "--tls-ca", pki.CA, "--tls-cert", pki.ClientCert, "--tls-key", pki.ClientKey, "wss://" + link + "/t"}
			}},
		{"quic-fingerprint", 0, "",
			func(t *testing.T, link string) []string {
				return []string{"--state-dir", filepath.Join(dir, "state-quic"), "quic://" + link}
			},
			func(t *testing.T, link, log string) []string {
				m := fingerprintRE.FindStringSubmatch(log)
				if m == nil {
					t.Fatalf("listen logged no certificate fingerprint:\n%s", log)
				}
				return []string{"--tls-fingerprint", m[1], "quic://" + link}
			}},
		{"quic-client-certificate-striped-over-3", 3, "",
			func(t *testing.T, link string) []string {
				return []string{"--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-client-ca", pki.CA, "quic://" + link}
			},
			func(t *testing.T, link, _ string) []string {
				return []string{"--carriers", "3", "--tls-ca", pki.CA, "--tls-cert", pki.ClientCert, "--tls-key", pki.ClientKey, "quic://" + link}
			}},
		{"fifo", 0, "",
			func(t *testing.T, _ string) []string {
				return []string{fmt.Sprintf("fifo:%s,%s", filepath.Join(dir, "up"), filepath.Join(dir, "down"))}
			},
			func(t *testing.T, _, _ string) []string {
				return []string{fmt.Sprintf("fifo:%s,%s", filepath.Join(dir, "down"), filepath.Join(dir, "up"))}
			}},
		{"comm-unix-socket", 0, "",
			func(t *testing.T, _ string) []string { return []string{"comm:" + filepath.Join(dir, "link.sock")} },
			func(t *testing.T, _, _ string) []string { return []string{"comm:" + filepath.Join(dir, "link.sock")} }},
		{"exec-sockmux-stdio", 0, "",
			nil,
			func(t *testing.T, _, _ string) []string {
				return []string{fmt.Sprintf("exec:SOCKMUX_TEST_MAIN=1 exec %s stdio --log-level debug", os.Args[0])}
			}},
		// Each dial starts another "sockmux stdio", which serves one
		// carrier: the extra carriers are refused and the link goes on.
		{"exec-sockmux-stdio-asked-for-2-carriers", 0, "cannot add carriers",
			nil,
			func(t *testing.T, _, _ string) []string {
				return []string{"--carriers", "2", fmt.Sprintf("exec:SOCKMUX_TEST_MAIN=1 exec %s stdio", os.Args[0])}
			}},
	}
}

// TestCarriers runs one body, a checksummed transfer, a half-close and
// many streams through a forward, over every carrier kind, with the
// listen and connect commands as a user runs them.
func TestCarriers(t *testing.T) {
	for _, row := range carrierRows(t) {
		t.Run(row.name, func(t *testing.T) { carrierRun(t, row, nil, "") })
	}
}

// TestKeyedCarriers runs TestCarriers's body over every carrier kind with
// a pre-shared key on both sides: each link, and each carrier of a
// striped one, comes up encrypted (TLS ones with the channel inside TLS).
func TestKeyedCarriers(t *testing.T) {
	const k = "the key of every carrier kind, 32+"
	key := keyFile(t, k)
	t.Setenv("SOCKMUX_KEY", k) // for the "sockmux stdio" an exec carrier runs
	for _, row := range carrierRows(t) {
		t.Run(row.name, func(t *testing.T) { carrierRun(t, row, []string{"--key-file", key}, "encrypted=true") })
	}
}

// carrierRun runs one carrier row with extra flags on both sides; when
// wantUp is set, both sides' "link up" lines must say it.
func carrierRun(t *testing.T, row carrierRow, extra []string, wantUp string) {
	{
		{
			testkit.CheckLeaks(t)
			echo := testkit.Echo(t)
			link, fwd := testkit.FreeAddr(t), testkit.FreeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			codes := map[string]int{}
			var mu sync.Mutex
			start := func(name string, args []string, log *syncBuffer) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code := run(ctx, args, io.Discard, log)
					mu.Lock()
					codes[name] = code
					mu.Unlock()
				}()
			}
			var llog, clog syncBuffer
			t.Cleanup(func() {
				cancel()
				wg.Wait()
				for name, code := range codes {
					if code != 0 {
						t.Errorf("%s exited %d; logs:\nlisten:\n%s\nconnect:\n%s", name, code, llog.String(), clog.String())
					}
				}
			})
			if row.listen != nil {
				start("listen", append(append([]string{"listen", "--drain", "0s"}, extra...), row.listen(t, link)...), &llog)
				waitLog(t, &llog, `msg="listening for links"`)
			}
			start("connect", append(append([]string{"connect", "--drain", "0s", "-L", fwd + ":" + echo}, extra...), row.connect(t, link, llog.String())...), &clog)
			waitLog(t, &clog, `msg="link up"`)
			if wantUp != "" {
				waitLog(t, &clog, wantUp)
				if row.listen != nil {
					waitLog(t, &llog, wantUp)
				}
			}
			if row.wantLog != "" {
				waitLog(t, &clog, row.wantLog)
			}
			if row.striped > 0 {
				waitLog(t, &clog, fmt.Sprintf("carriers=%d", row.striped))
				waitLog(t, &llog, fmt.Sprintf("carriers=%d", row.striped))
			}
			carrierBody(t, fwd)
		}
	}
}

func carrierBody(t *testing.T, fwd string) {
	dial := func() *net.TCPConn {
		c, err := net.Dial("tcp", fwd)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.TCPConn)
	}
	// A checksummed transfer, both ways through the echo.
	testkit.EchoRoundTrip(t, dial(), 1, 8<<20)
	// Half-close: the request, shutdown(write), then the whole answer.
	c := dial()
	req := testkit.Payload(2, 300_000)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || sha256.Sum256(got) != sha256.Sum256(req) {
		t.Fatalf("half-closed request came back as %d bytes (want %d), err %v", len(got), len(req), err)
	}
	// Many streams at once.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", fwd)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			testkit.EchoRoundTrip(t, c, uint64(10+i), 100_000+i*10_000)
		}()
	}
	wg.Wait()
}
