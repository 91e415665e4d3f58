package actors

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestShareUpstreamRedial: the upstream drops (the TCP server is killed
// and started again on the same port; the far end of the pipes goes away
// and comes back); the clients stay connected, get the new upstream's
// bytes, and their input reaches it.
func TestShareUpstreamRedial(t *testing.T) {
	for _, k := range farKinds() {
		t.Run(k.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			spec, accept := k.start(t)
			s, rec := startShare(t, ShareConfig{Upstream: spec})
			far := accept(t)
			a, b := joinClient(t, s, rec, nil), joinClient(t, s, rec, nil)
			for round, word := range []string{"first upstream\n", "second upstream\n"} {
				if round == 1 {
					far.Close()
					rec.Wait(t, shareLimit, "upstream down", func(r testkit.Record) bool { return r.Msg == "upstream down" })
					if k.restart != nil {
						k.restart(t)
					}
					far = accept(t)
				}
				if _, err := far.Write([]byte(word)); err != nil {
					t.Fatal(err)
				}
				readExpect(t, a, []byte(word), "client a")
				readExpect(t, b, []byte(word), "client b")
				in := fmt.Sprintf("input %d\n", round)
				if _, err := a.Write([]byte(in)); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(in))
				if _, err := io.ReadFull(far, got); err != nil || string(got) != in {
					t.Fatalf("upstream read %q, %v; want %q", got, err, in)
				}
			}
			st := s.Stats()
			if st.UpstreamSessions != 2 || len(st.Clients) != 2 {
				t.Fatalf("stats %+v", st)
			}
			if n := countLogs(rec, "client left"); n != 0 {
				t.Fatalf("%d clients left during the redial", n)
			}
		})
	}
}

// TestShareClientHalfClose: a client that closes its sending side still
// receives what the upstream sends; one that closes altogether leaves (it
// shows when a write to it fails), and the others carry on.
func TestShareClientHalfClose(t *testing.T) {
	testkit.CheckLeaks(t)
	spec, accept := tcpKind().start(t)
	s, rec := startShare(t, ShareConfig{Upstream: spec})
	far := accept(t)
	a, b := joinClient(t, s, rec, nil), joinClient(t, s, rec, nil)
	if _, err := a.Write([]byte("last words\n")); err != nil {
		t.Fatal(err)
	}
	if err := a.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	readExpect(t, far.(net.Conn), []byte("last words\n"), "upstream")
	for _, c := range []net.Conn{a, b} {
		if _, err := far.Write([]byte("still there?\n")); err != nil {
			t.Fatal(err)
		}
		readExpect(t, a, []byte("still there?\n"), "the half-closed client")
		readExpect(t, b, []byte("still there?\n"), "the other client")
		_ = c
	}
	if n := countLogs(rec, "client left"); n != 0 {
		t.Fatalf("%d clients left after a half-close", n)
	}
	a.Close()
	// The upstream keeps talking; the writes to a fail, and it leaves.
	addr := a.LocalAddr().String()
	line := []byte("tick\n")
	deadline := time.Now().Add(shareLimit)
	for {
		if _, err := far.Write(line); err != nil {
			t.Fatal(err)
		}
		readExpect(t, b, line, "the other client")
		if len(s.Stats().Clients) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed client never left")
		}
	}
	left := rec.Wait(t, shareLimit, "a left", func(r testkit.Record) bool { return r.Msg == "client left" && r.Attrs["client"] == addr })
	if left.Attrs["reason"] != "closed by client" {
		t.Fatalf("left for %q", left.Attrs["reason"])
	}
}

// TestShareEchoUpstream: with an upstream that sends back what it gets (a
// TCP echo server, exec:cat, or cat on the far end of a pair of named
// pipes), each client's line reaches every client.
func TestShareEchoUpstream(t *testing.T) {
	cases := []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"tcp", func(t *testing.T) string { return "tcp://" + testkit.Echo(t) }},
		{"exec", func(t *testing.T) string { return "exec:cat" }},
		{"fifo with cat", func(t *testing.T) string {
			dir := t.TempDir()
			rpath, wpath := filepath.Join(dir, "down"), filepath.Join(dir, "up")
			testkit.Mkfifo(t, rpath, wpath)
			// The far end: cat reads what sockmux writes to up and writes
			// it back to down.
			cmd := exec.Command("sh", "-c", `exec cat "$0" > "$1"`, wpath, rpath)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				// The share (closed before this runs) closed up: cat
				// has read its end and exited.
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case <-done:
				case <-time.After(shareLimit):
					cmd.Process.Kill()
					<-done
					t.Error("cat did not exit when the share closed its pipe")
				}
			})
			return "fifo:" + rpath + "," + wpath
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			spec := tc.start(t)
			s, rec := startShare(t, ShareConfig{Upstream: spec})
			rec.Wait(t, shareLimit, "upstream up", func(r testkit.Record) bool { return r.Msg == "upstream up" })
			clients := []net.Conn{joinClient(t, s, rec, nil), joinClient(t, s, rec, nil), joinClient(t, s, rec, nil)}
			for i, from := range clients {
				line := []byte(strings.Repeat(fmt.Sprintf("client %d says hello. ", i), 500) + "\n")
				if _, err := from.Write(line); err != nil {
					t.Fatal(err)
				}
				for j, c := range clients {
					readExpect(t, c, line, fmt.Sprintf("client %d reading client %d's line", j, i))
				}
			}
		})
	}
}

// TestShareExecRerun: a command upstream that exits is run again, with
// backoff, while the clients stay connected.
func TestShareExecRerun(t *testing.T) {
	testkit.CheckLeaks(t)
	s, rec := startShare(t, ShareConfig{Upstream: "exec:read line; echo \"got $line\""})
	rec.Wait(t, shareLimit, "upstream up", func(r testkit.Record) bool { return r.Msg == "upstream up" })
	c := joinClient(t, s, rec, nil)
	for i := range 3 {
		// A line written while the last run is on its way out could
		// land in its stdin and be lost with it: wait for the next run.
		shareWaitFor(t, fmt.Sprintf("run %d", i+1), func() bool { return s.Stats().UpstreamSessions >= int64(i+1) })
		in := fmt.Sprintf("line %d\n", i)
		if _, err := c.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		readExpect(t, c, []byte("got "+in), "the command's answer")
	}
	shareWaitFor(t, "three runs", func() bool { return s.Stats().UpstreamSessions >= 3 })
	if n := countLogs(rec, "upstream down"); n < 2 {
		t.Fatalf("%d upstream-down records, want at least 2", n)
	}
}

// TestShareTunnel: the upstream is a target reached through a sockmux
// link; it is redialled over the link when it drops.
func TestShareTunnel(t *testing.T) {
	testkit.CheckLeaks(t)
	peer, err := NewNode(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peer.Serve(ln)
	k := tcpKind()
	spec, accept := k.start(t)
	target := strings.TrimPrefix(spec, "tcp://")
	s, rec := startShare(t, ShareConfig{Upstream: "tunnel:" + ln.Addr().String() + "," + target})
	c := joinClient(t, s, rec, nil)
	for round := range 2 {
		far := accept(t)
		word := fmt.Sprintf("through the tunnel, round %d\n", round)
		if _, err := far.Write([]byte(word)); err != nil {
			t.Fatal(err)
		}
		readExpect(t, c, []byte(word), "client")
		if _, err := c.Write([]byte("ack\n")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(far, got); err != nil || string(got) != "ack\n" {
			t.Fatalf("upstream read %q, %v", got, err)
		}
		far.Close()
		k.restart(t)
	}
	rec.Wait(t, shareLimit, "link up", func(r testkit.Record) bool { return r.Msg == "link up" })
}

// TestParseUpstream: the UPSTREAM kinds, and what is refused.
func TestParseUpstream(t *testing.T) {
	cases := []struct {
		spec, kind, via, target string
		bad                     string // part of the error; "" when it parses
	}{
		{spec: "tcp://127.0.0.1:23", kind: "tcp"},
		{spec: "mud.example.org:4000", kind: "tcp"},
		{spec: "fifo:down,up", kind: "fifo"},
		{spec: "exec:telnet mud 23", kind: "exec"},
		{spec: "tunnel:hostX:9000,127.0.0.1:23", kind: "tunnel", via: "hostX:9000", target: "127.0.0.1:23"},
		{spec: "tunnel:fifo:a,b,mud:23", kind: "tunnel", via: "fifo:a,b", target: "mud:23"},
		{spec: "", bad: "want tcp://"},
		{spec: "udp://h:1", bad: `"udp"`},
		{spec: "tls://h:1", bad: `"tls"`},
		{spec: "comm:/dev/ttyS0", bad: "want tcp://"},
		{spec: "fifo:onlyone", bad: "READ_PATH,WRITE_PATH"},
		{spec: "exec:", bad: "COMMAND"},
		{spec: "nocolon", bad: "nocolon"},
		{spec: "tunnel:hostX:9000", bad: "tunnel:ADDR,host:port"},
		{spec: "tunnel:,mud:23", bad: "no ADDR"},
		{spec: "tunnel:hostX:9000,mud", bad: `"mud"`},
		{spec: "tunnel:bogus://x:1,mud:23", bad: `"bogus"`},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			u, err := ParseUpstream(tc.spec)
			if tc.bad != "" {
				if !errors.Is(err, ErrBadUpstream) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("error %v, want ErrBadUpstream naming %s", err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Kind != tc.kind || u.via != tc.via || u.target != tc.target || u.String() != tc.spec {
				t.Fatalf("parsed %+v", u)
			}
		})
	}
}
