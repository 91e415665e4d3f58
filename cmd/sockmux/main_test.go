package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // closed, and replaced, at each Write (written)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote != nil {
		close(s.wrote)
		s.wrote = nil
	}
	return s.b.Write(p)
}

// written returns what the buffer holds and a channel closed at the next
// Write: a test waits for a line on it, not on a timer.
func (s *syncBuffer) written() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote == nil {
		s.wrote = make(chan struct{})
	}
	return s.b.String(), s.wrote
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBadCommandLines: each bad command line exits 2 with a message naming
// what was wrong.
func TestBadCommandLines(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"listen", "-L", "8080:host", "127.0.0.1:0"}, `"8080:host"`},
		{[]string{"listen", "-L", "99999:host:80", "127.0.0.1:0"}, `"99999"`},
		{[]string{"connect", "-L", "8080:host:0", "127.0.0.1:1"}, `"0"`},
		{[]string{"connect", "--log-level", "loud", "127.0.0.1:1"}, `"loud"`},
		{[]string{"connect", "--bogus", "127.0.0.1:1"}, "--bogus"},
		{[]string{"connect"}, "one ADDR"},
		{[]string{"listen", "a:1", "b:2"}, "one ADDR"},
		{[]string{"listen", "nocolon"}, `"nocolon"`},
		{[]string{"connect", "udp://127.0.0.1:1"}, `"udp"`},
		{[]string{"demo", "--streams", "0"}, "--streams"},
		{[]string{"demo", "--carriers", "0"}, "--carriers"},
		{[]string{"listen", "--profile", "gpu", "127.0.0.1:0"}, `"gpu"`},
		{[]string{"connect", "-R", "8080:web", "127.0.0.1:1"}, `"8080:web"`},
		{[]string{"connect", "--allow-listen", "nope", "127.0.0.1:1"}, `"nope"`},
		{[]string{"connect", "-D", "x:y:z", "127.0.0.1:1"}, `"x:y:z"`},
		{[]string{"connect", "-L", "127.0.0.1:17560:a:1", "-L", "127.0.0.1:17560:b:2", "127.0.0.1:1"}, "conflicting forward: -L 127.0.0.1:17560->b:2 listens where -L 127.0.0.1:17560->a:1 does"},
		{[]string{"connect", "-L", "17561:a:1", "-D", "17561", "127.0.0.1:1"}, "conflicting forward: -D 127.0.0.1:17561"},
		{[]string{"listen", "--metrics", "nope", "127.0.0.1:0"}, `--metrics: "nope": want host:port`},
		{[]string{"connect", "--open-timeout", "0", "127.0.0.1:1"}, "--open-timeout 0: want a duration above 0"},
		{[]string{"connect", "--udp-idle", "0s", "127.0.0.1:1"}, "--udp-idle 0: want a duration above 0"},
		{[]string{"listen", "--metrics", "127.0.0.1:99999", "127.0.0.1:0"}, `port "99999"`},
		{[]string{"connect", "--socks-user", "nocolon", "127.0.0.1:1"}, "--socks-user"},
		{[]string{"connect", "--direct", "bad", "127.0.0.1:1"}, `"bad"`},
		{[]string{"connect", "--udp-max", "0", "127.0.0.1:1"}, "--udp-max"},
		{[]string{"connect", "--carriers", "17", "127.0.0.1:1"}, "--carriers"},
		{[]string{"connect", "--carriers", "0", "127.0.0.1:1"}, "--carriers"},
		{[]string{"listen", "--carriers", "2", "127.0.0.1:0"}, "--carriers"},
		{[]string{"listen", "--resume-window", "-1s", "127.0.0.1:0"}, "--resume-window"},
		{[]string{"listen", "--max-binds", "0", "127.0.0.1:0"}, "--max-binds"},
		{[]string{"connect", "--pool", "we b", "127.0.0.1:1"}, `--pool "we b"`},
		{[]string{"listen", "--remote-bind-addr", "127.0.0.11:80", "127.0.0.1:0"}, "--remote-bind-addr"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"lisen", "127.0.0.1:0"}, `did you mean "listen"?`},
		{[]string{"run"}, "-c FILE"},
		{[]string{"check"}, "-c FILE"},
		{[]string{"listen", "--lokal", "1:h:2", "127.0.0.1:0"}, "did you mean --local?"},
		{[]string{"connect", "--max-stream", "5", "127.0.0.1:1"}, "did you mean --max-streams?"},
		{[]string{"listen", "--cluster-bind", "127.0.0.1:0", "127.0.0.1:0"}, "--cluster-bind applies only with --cluster"},
		{[]string{"listen", "--cluster", "c", "127.0.0.1:0"}, "--cluster-bind"},
		{[]string{"listen", "--cluster", "c", "--cluster-bind", "127.0.0.1:0", "--cluster-provider", "zk", "127.0.0.1:0"}, "--cluster-provider"},
		{[]string{"listen", "--cluster", "c", "--cluster-bind", "0.0.0.0:7946", "--cluster-advertise", "10.0.0.1:7946", "127.0.0.1:0"}, "without --cluster-key"},
		{[]string{"listen", "--cluster", "c", "--cluster-bind", "127.0.0.1:0", "--cluster-seed", "nocolon", "127.0.0.1:0"}, "--cluster-seed"},
		{[]string{"listen", "--cluster", "c", "--cluster-bind", "127.0.0.1:0", "--cluster-key", "/nonexistent/key", "127.0.0.1:0"}, "--cluster-key"},
		{[]string{"listen", "--cluster", "c", "--cluster-bind", "127.0.0.1:0", "fifo:/nonexistent/r,/nonexistent/w"}, "--cluster-link"},
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

func TestVersionAndHelp(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), version) {
		t.Fatalf("--version: exit %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"connect", "--help"}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "-L, --local") {
		t.Fatalf("connect --help: exit %d, output %q", code, out.String())
	}
}

// TestListenConnect runs the two subcommands as a user would, each with a
// -L forward, and carries traffic through both forwards.
func TestListenConnect(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	linkAddr := testkit.FreeAddr(t)
	fwdL, fwdC, metricsAddr := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var lerr, cerr syncBuffer
	codes := make([]int, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		codes[0] = run(ctx, []string{"listen", "-L", fwdL + ":" + echo, linkAddr}, io.Discard, &lerr)
	}()
	waitLog(t, &lerr, `msg="listening for links"`)
	go func() {
		defer wg.Done()
		codes[1] = run(ctx, []string{"connect", "--log-level", "debug", "--metrics", metricsAddr, "-L", fwdC + ":" + echo, linkAddr}, io.Discard, &cerr)
	}()
	waitLog(t, &lerr, `msg="link up"`)
	waitLog(t, &cerr, `msg="link up"`)
	for _, addr := range []string{fwdL, fwdC} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		testkit.EchoRoundTrip(t, c, 9, 4<<20)
		c.Close()
	}
	// connect --metrics counts what its forward carried.
	if got := metricValue(t, metricsAddr, `sockmux_bytes_sent_total{link="default"}`); got < 4<<20 {
		t.Errorf("connect's metrics: %v bytes sent, want at least %d", got, 4<<20)
	}
	cancel()
	wg.Wait()
	if codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("exit codes %v; stderr:\n%s\n%s", codes, lerr.String(), cerr.String())
	}
	if strings.Contains(lerr.String(), "lib=protoactor") {
		t.Errorf("protoactor logged at the default level:\n%s", lerr.String())
	}
	for _, want := range []string{`msg="forward listening"`, `msg="link down"`} {
		if !strings.Contains(lerr.String(), want) {
			t.Errorf("listen's log lacks %s:\n%s", want, lerr.String())
		}
	}
}

// TestDemo runs the demo with a small load and checks what it reports.
func TestDemo(t *testing.T) {
	testkit.CheckLeaks(t)
	var out bytes.Buffer
	res, err := runDemo(context.Background(), &out, slog.New(slog.DiscardHandler), 4, 2<<20, 2)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if res.Verified != 4 || !res.HalfClose || res.Bytes != 8<<20 {
		t.Fatalf("demo result %+v", res)
	}
	if len(res.CarrierBytes) != 2 || res.CarrierBytes[0] == 0 || res.CarrierBytes[1] == 0 {
		t.Fatalf("demo striped %v over its carriers, want bytes on both", res.CarrierBytes)
	}
	if !strings.HasSuffix(out.String(), "OK\n") {
		t.Fatalf("demo output does not end in OK:\n%s", out.String())
	}
}

// waitLog waits for a log line, failing after a generous limit.
func waitLog(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in log:\n%s", want, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestJSONLogDurations: JSON logs write durations as people do ("5s").
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("drain", "drain", 5*time.Second)
	if !strings.Contains(buf.String(), `"drain":"5s"`) {
		t.Fatalf("JSON log %s: want the duration as \"5s\"", buf.String())
	}
}
