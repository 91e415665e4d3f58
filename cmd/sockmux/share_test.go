package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sockmux/internal/testkit"
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
		{append([]string{"share", "--listen", "0", "--client-buffer", "0"}, up...), "--client-buffer"},
		{append([]string{"share", "--listen", "0", "--client-buffer", "lots"}, up...), `"lots"`},
		{append([]string{"share", "--listen", "0", "--replay", "-1"}, up...), "--replay"},
		{append([]string{"share", "--listen", "0", "--replay", "2MiB"}, up...), "--replay 2MiB is more than --client-buffer 1MiB"},
		{append([]string{"share", "--listen", "0", "extra"}, up...), `"extra"`},
		{append([]string{"share", "--listen", "0", "--bogus"}, up...), "--bogus"},
		{append([]string{"share", "--listen", "0", "--log-level", "loud"}, up...), `"loud"`},
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
