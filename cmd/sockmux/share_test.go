package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestShareBadCommandLines: each bad share command line exits 2 with a
// message naming what was wrong.
func TestShareBadCommandLines(t *testing.T) {
	up := []string{"--upstream", "tcp://127.0.0.1:1"}
	cases := []struct {
		args []string
		want string
	}{
		{append([]string{"share"}, up...), "--listen"},
		{[]string{"share", "--listen", "0"}, "--upstream"},
		{append([]string{"share", "--listen", "99999"}, up...), `"99999"`},
		{append([]string{"share", "--listen", "host:port"}, up...), `"port"`},
		{append([]string{"share", "--listen", "a:b:c"}, up...), `"a:b:c"`},
		{[]string{"share", "--listen", "0", "--upstream", "udp://127.0.0.1:1"}, `"udp"`},
		{[]string{"share", "--listen", "0", "--upstream", "fifo:onlyone"}, "READ_PATH,WRITE_PATH"},
		{[]string{"share", "--listen", "0", "--upstream", "exec:"}, "exec:COMMAND"},
		{[]string{"share", "--listen", "0", "--upstream", "comm:/dev/ttyS0"}, `"comm:/dev/ttyS0"`},
		{[]string{"share", "--listen", "0", "--upstream", "tunnel:127.0.0.1:9000"}, "tunnel:ADDR,host:port"},
		{[]string{"share", "--listen", "0", "--upstream", "tunnel:127.0.0.1:9000,mud"}, `"mud"`},
		{[]string{"share", "--listen", "0", "--upstream", "tunnel:tls://127.0.0.1:9000,mud:23"}, "--upstream"},
		{append([]string{"share", "--listen", "0", "--slow", "fast"}, up...), `"fast"`},
		{append([]string{"share", "--listen", "0", "--slow-timeout", "0"}, up...), "--slow-timeout 0s: want a duration above 0"},
		{append([]string{"share", "--listen", "0", "--slow-timeout", "-1s"}, up...), "--slow-timeout"},
		{append([]string{"share", "--listen", "0", "--slow-timeout", "soon"}, up...), `"soon"`},
		{append([]string{"share", "--listen", "0", "--slow", "drop", "--slow-timeout", "1s"}, up...), "--slow-timeout applies only to --slow wait, not --slow drop"},
		{append([]string{"share", "--listen", "0", "--client-buffer", "0"}, up...), "--client-buffer"},
		{append([]string{"share", "--listen", "0", "--client-buffer", "lots"}, up...), `"lots"`},
		{append([]string{"share", "--listen", "0", "--replay", "-1"}, up...), "--replay"},
		{append([]string{"share", "--listen", "0", "--replay", "2MiB"}, up...), "--replay 2MiB is more than --client-buffer 1MiB"},
		{append([]string{"share", "--listen", "0", "extra"}, up...), `"extra"`},
		{append([]string{"share", "--listen", "0", "--bogus"}, up...), "--bogus"},
		{append([]string{"share", "--listen", "0", "--log-level", "loud"}, up...), `"loud"`},
		{append([]string{"share", "--listen", "0", "--peer-key", "sockmux-x25519 AAAA"}, up...), "need an identity"},
		{append([]string{"share", "--listen", "0", "--identity", "/nonexistent/id"}, up...), "--identity"},
		{append([]string{"share", "--listen", "0", "--key-file", "/nonexistent/key"}, up...), "--key-file"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errOut)
			if code != 2 {
				t.Fatalf("exit code %d, want 2 (stderr: %s)", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("stderr %q does not name %s", errOut.String(), tc.want)
			}
		})
	}
}

// TestParseSize: the sizes --client-buffer and --replay take.
func TestParseSize(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "4096": 4096, "64K": 64 << 10, "64KiB": 64 << 10, "1MiB": 1 << 20,
		"2mb": 2 << 20, "1G": 1 << 30, "512B": 512, " 3 KiB ": 3 << 10} {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1", "1.5M", "M", "10X", "99999999999G"} {
		if got, err := parseSize(s); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", s, got)
		}
	}
}

var shareListenRE = regexp.MustCompile(`msg="share listening" listen=(\S+)`)

// TestShareCommand runs sockmux share as the seed's demo does: a MUD-like
// server that greets and answers lines, two clients sharing its session;
// the second one, joining late, is shown the greeting by --replay.
func TestShareCommand(t *testing.T) {
	testkit.CheckLeaks(t)
	mud := testkit.Serve(t, func(c net.Conn) {
		fmt.Fprint(c, "Welcome to the MUD\r\n> ")
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			fmt.Fprintf(c, "You said: %s\r\n> ", sc.Text())
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var (
		stderr syncBuffer
		wg     sync.WaitGroup
		code   int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		code = run(ctx, []string{"share", "--listen", "127.0.0.1:0", "--upstream", "tcp://" + mud, "--replay", "1KiB"}, io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	waitLog(t, &stderr, `msg="share listening"`)
	waitLog(t, &stderr, `msg="upstream up"`)
	m := shareListenRE.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no listen address in the log:\n%s", stderr.String())
	}
	var clients []net.Conn
	for i := range 2 {
		c, err := net.Dial("tcp", m[1])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		expect(t, c, "Welcome to the MUD\r\n> ", fmt.Sprintf("client %d's greeting", i))
		clients = append(clients, c)
	}
	// The second client says one thing and closes its sending side, as
	// printf 'look\n' | nc -N would; it still hears the answer.
	if _, err := clients[1].Write([]byte("look\n")); err != nil {
		t.Fatal(err)
	}
	if err := clients[1].(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		expect(t, c, "You said: look\r\n> ", fmt.Sprintf("client %d's answer", i))
	}
	cancel()
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit code %d:\n%s", code, stderr.String())
	}
	for _, want := range []string{`msg="client joined"`, `replay=`, `msg="shutting down"`, `msg="client left"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, stderr.String())
		}
	}
}

func expect(t *testing.T, c net.Conn, want, what string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("%s: read %q, %v; want %q", what, got, err, want)
	}
}

// TestShareCommandWaits: sockmux share with its defaults (--slow wait)
// gives three clients that read at ordinary speeds all 64 MiB an upstream
// sends at once, intact: the upstream waits for the slowest rather than
// dropping what it could not take.
func TestShareCommandWaits(t *testing.T) {
	testkit.CheckLeaks(t)
	const size = 64 << 20
	sums := make(chan [32]byte, 1)
	upstream := testkit.Serve(t, func(c net.Conn) {
		// Sends once a client says go: after all three joined.
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return
		}
		sum, err := testkit.Stream(c, 9, size)
		if err != nil {
			t.Error(err)
		}
		sums <- sum
		io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithCancel(context.Background())
	var (
		stderr syncBuffer
		wg     sync.WaitGroup
		code   int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		code = run(ctx, []string{"share", "--listen", "127.0.0.1:0", "--upstream", "tcp://" + upstream}, io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	waitLog(t, &stderr, `msg="upstream up"`)
	if !strings.Contains(stderr.String(), "slow=wait slow_timeout=10s") {
		t.Fatalf("share did not log the default policy:\n%s", stderr.String())
	}
	m := shareListenRE.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no listen address in the log:\n%s", stderr.String())
	}
	type result struct {
		n   int64
		sum []byte
		err error
	}
	results := make(chan result, 3)
	var clients []net.Conn
	for i, readSize := range []int{4 << 10, 32 << 10, 256 << 10} {
		c, err := net.Dial("tcp", m[1])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitCount(t, &stderr, `msg="client joined"`, i+1)
		clients = append(clients, c)
		go func() {
			c.SetReadDeadline(time.Now().Add(60 * time.Second)) // hang guard
			h := sha256.New()
			n, err := io.CopyBuffer(h, io.LimitReader(c, size), make([]byte, readSize))
			results <- result{n, h.Sum(nil), err}
		}()
	}
	if _, err := clients[0].Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	want := <-sums
	for range clients {
		r := <-results
		if r.err != nil || r.n != size || !bytes.Equal(r.sum, want[:]) {
			t.Fatalf("a client read %d of %d bytes (%v), sha256 %x, want %x", r.n, size, r.err, r.sum, want)
		}
	}
	cancel()
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit code %d:\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "slow client") {
		t.Fatalf("a client was slow:\n%s", stderr.String())
	}
}

// TestShareConfigSlow: the [[share]] keys slow and slow-timeout, and a
// slow-timeout that does not apply, reported at its line.
func TestShareConfigSlow(t *testing.T) {
	base := "[[share]]\nname = \"s\"\nlisten = \"7000\"\nupstream = \"tcp://127.0.0.1:1\"\n"
	c, err := loadConfig(writeConfig(t, base+"slow-timeout = \"200ms\"\n"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.shares[0].cfg; cfg.Slow != sockmux.SlowWait || cfg.SlowTimeout != 200*time.Millisecond {
		t.Fatalf("slow %v, slow-timeout %v; want wait, 200ms", cfg.Slow, cfg.SlowTimeout)
	}
	for _, tc := range []struct {
		text, key, want string
		line            int
	}{
		{"slow = \"drop\"\nslow-timeout = \"1s\"\n", "slow-timeout", "applies only to --slow wait", 6},
		{"slow-timeout = \"0s\"\n", "slow-timeout", "want a duration above 0", 5},
		{"slow = \"later\"\n", "slow", "want wait, drop or disconnect", 5},
	} {
		_, err := loadConfig(writeConfig(t, base+tc.text), slog.New(slog.DiscardHandler))
		var ce *configError
		if !errors.As(err, &ce) || ce.Key != tc.key || ce.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %s at line %d key %s", tc.text, err, tc.want, tc.line, tc.key)
		}
	}
}

// TestShareTunnelIdentity: share's tunnel: upstream runs the identity
// handshake with --identity and --peer-key: with the listener's key
// pinned its clients reach the target; with another key pinned the link
// is refused, naming the mismatch, and no upstream comes up.
func TestShareTunnelIdentity(t *testing.T) {
	dir := t.TempDir()
	shareID, shareKey := writeIdentity(t, dir, "share")
	_, listenerKey := writeIdentity(t, dir, "listener")
	_, otherKey := writeIdentity(t, dir, "other")
	ak, err := identity.ParseAuthorizedKeys([]byte(shareKey.Public.String()))
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	if code := run(t.Context(), []string{"share", "--listen", "0", "--identity", shareID, "--upstream", "tcp://127.0.0.1:1"}, io.Discard, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "--identity applies to a tunnel: upstream only") {
		t.Fatalf("--identity with a tcp:// upstream: exit %d, %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(t.Context(), []string{"share", "--listen", "0", "--tls-ca", shareID, "--upstream", "tcp://127.0.0.1:1"}, io.Discard, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "--tls-ca applies to a tunnel: upstream only") {
		t.Fatalf("--tls-ca with a tcp:// upstream: exit %d, %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(t.Context(), []string{"share", "--listen", "0", "--tls-fingerprint", "AB", "--upstream", "tunnel:127.0.0.1:1,127.0.0.1:2"}, io.Discard, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "--tls-fingerprint applies to a tunnel: over tls://") {
		t.Fatalf("--tls-fingerprint with a tunnel: over tcp: exit %d, %s", code, errOut.String())
	}
	for _, tc := range []struct {
		name string
		pin  *identity.PrivateKey
		want string // in the share's log
	}{{"pinned", listenerKey, `msg="upstream up"`}, {"wrong pin", otherKey, "does not match the pinned key"}} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			greeter := testkit.Greeter(t, "hello")
			peer, err := sockmux.NewPeer(&sockmux.PeerConfig{Logger: slog.New(slog.DiscardHandler), Identity: listenerKey, AuthorizedKeys: ak})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { peer.Close() })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			peer.Serve(ln)
			ctx, cancel := context.WithCancel(context.Background())
			var (
				stderr syncBuffer
				wg     sync.WaitGroup
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(ctx, []string{"share", "--listen", "127.0.0.1:0", "--replay", "5", "--identity", shareID, "--peer-key", tc.pin.Public.String(),
					"--upstream", "tunnel:" + ln.Addr().String() + "," + greeter}, io.Discard, &stderr)
			}()
			t.Cleanup(func() { cancel(); wg.Wait() })
			waitLog(t, &stderr, tc.want)
			if tc.pin != listenerKey {
				if strings.Contains(stderr.String(), `msg="upstream up"`) {
					t.Fatalf("the upstream came up through a listener with another key:\n%s", stderr.String())
				}
				return
			}
			m := shareListenRE.FindStringSubmatch(stderr.String())
			if m == nil {
				t.Fatalf("no listen address in the log:\n%s", stderr.String())
			}
			c, err := net.Dial("tcp", m[1])
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			expect(t, c, "hello", "the client's greeting through the tunnel")
		})
	}
}

// TestShareTunnelWrongKey: like connect, a share whose tunnel: link is
// refused for a reason retrying cannot fix (its key) exits 1 with the
// reason instead of retrying for ever.
func TestShareTunnelWrongKey(t *testing.T) {
	testkit.CheckLeaks(t)
	link := testkit.FreeAddr(t)
	runBG(t, "listen", "--drain", "0s", "--key-file", keyFile(t, "the listener's key, 32 bytes long"), link)
	waitListening(t, link)
	code, log := runFor(t, 20*time.Second, "share", "--listen", "127.0.0.1:0", "--key-file", keyFile(t, "another key entirely, 32 bytes!!"),
		"--upstream", "tunnel:"+link+","+testkit.Greeter(t, "hello"))
	if code != 1 || !strings.Contains(log, "pre-shared keys do not match") {
		t.Fatalf("share with a wrong key: exit %d, want 1 with the reason:\n%s", code, log)
	}
}
