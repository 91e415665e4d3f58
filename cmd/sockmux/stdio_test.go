package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// pipeDialer hands out one stdio carrier, the near ends of the pipes a
// "sockmux stdio" process was started on.
type pipeDialer struct {
	once sync.Once
	conn net.Conn
}

func (d *pipeDialer) Dial(ctx context.Context) (net.Conn, error) {
	var c net.Conn
	d.once.Do(func() { c = d.conn })
	if c == nil {
		<-ctx.Done() // the one carrier is gone; wait to be cancelled
		return nil, ctx.Err()
	}
	return c, nil
}

func (d *pipeDialer) String() string { return "stdio" }

// TestStdioCarrier: "sockmux stdio" serves a link on its stdin and stdout,
// plain pipes here, and the carrier body passes over it.
func TestStdioCarrier(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	c := startStdio(t)
	exited, stderr := c.exited, &c.stderr

	up := make(chan sockmux.LinkEvent, 4)
	node, err := sockmux.NewPeer(&sockmux.PeerConfig{Logger: slog.New(slog.DiscardHandler), Backoff: time.Hour,
		Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: echo}},
		OnLink:   func(ev sockmux.LinkEvent) { up <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	node.Connect(&pipeDialer{conn: c.conn})
	select {
	case ev := <-up:
		if !ev.Up {
			t.Fatalf("link down: %v", ev.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no link; stdio's stderr:\n%s", stderr.String())
	}
	carrierBody(t, node.ForwardAddrs()[0].String())
	// Closing this side ends the link; "sockmux stdio" then exits 0.
	node.Close()
	if err := <-exited; err != nil {
		t.Fatalf("sockmux stdio: %v\n%s", err, stderr.String())
	}
}

// TestStdioExitsWhenHandshakeFails: "sockmux stdio" exits non-zero, naming
// the handshake, when its stdin ends before a HELLO or its peer holds
// another key, instead of living on as an orphan of a dialler that gave up.
func TestStdioExitsWhenHandshakeFails(t *testing.T) {
	keyFile := t.TempDir() + "/key"
	if err := os.WriteFile(keyFile, []byte("the key stdio holds, 32 bytes long"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		peer func(t *testing.T, conn net.Conn) // plays the dialler; nil: stdin just ends
	}{
		{"stdin ends", nil},
		{"wrong key", func(t *testing.T, conn net.Conn) {
			node, err := sockmux.NewPeer(&sockmux.PeerConfig{Logger: slog.New(slog.DiscardHandler), Backoff: time.Hour,
				Key: []byte("another key, also 32 bytes long!!")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { node.Close() })
			node.Connect(&pipeDialer{conn: conn})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			c := startStdio(t, "--key-file", keyFile)
			cmd, exited, stderr := c.cmd, c.exited, &c.stderr
			if tc.peer == nil {
				c.conn.Close() // its stdin ends
			} else {
				tc.peer(t, c.conn)
			}
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 1 {
					t.Fatalf("sockmux stdio exited with %v, want status 1:\n%s", err, stderr.String())
				}
				if !strings.Contains(stderr.String(), "handshake failed") {
					t.Fatalf("the exit does not say the handshake failed:\n%s", stderr.String())
				}
			case <-time.After(20 * time.Second): // hang guard
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("sockmux stdio still running after its handshake failed:\n%s", stderr.String())
			}
		})
	}
}

// stdioChild is a "sockmux stdio" process on pipes: conn is this side's
// end of its stdin and stdout.
type stdioChild struct {
	cmd    *exec.Cmd
	conn   net.Conn
	stderr syncBuffer
	exited chan error
}

// startStdio starts "sockmux stdio --drain 0s args..." on pipes.
func startStdio(t testing.TB, args ...string) *stdioChild {
	t.Helper()
	toChild, fromParent, err := os.Pipe() // the child's stdin
	if err != nil {
		t.Fatal(err)
	}
	fromChild, toParent, err := os.Pipe() // the child's stdout
	if err != nil {
		t.Fatal(err)
	}
	c := &stdioChild{cmd: exec.Command(os.Args[0], append([]string{"stdio", "--drain", "0s"}, args...)...), exited: make(chan error, 1)}
	c.cmd.Env = append(os.Environ(), "SOCKMUX_TEST_MAIN=1")
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = toChild, toParent, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toChild.Close()
	toParent.Close()
	go func() { c.exited <- c.cmd.Wait() }()
	c.conn = carriers.Stdio(fromChild, fromParent)
	t.Cleanup(func() { fromChild.Close(); fromParent.Close() })
	return c
}

// TestStdioIdentity: "sockmux stdio --identity --authorized-keys" admits
// a dialler whose key the file lists (and that pins stdio's key), and
// refuses, exiting non-zero, one whose key it does not.
func TestStdioIdentity(t *testing.T) {
	dir := t.TempDir()
	stdioID, stdioKey := writeIdentity(t, dir, "stdio")
	_, listed := writeIdentity(t, dir, "listed")
	_, unlisted := writeIdentity(t, dir, "unlisted")
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, []byte(listed.Public.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		key   *identity.PrivateKey
		admit bool
	}{{"listed", listed, true}, {"unlisted", unlisted, false}} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			echo := testkit.Echo(t)
			c := startStdio(t, "--identity", stdioID, "--authorized-keys", auth)
			up := make(chan sockmux.LinkEvent, 4)
			node, err := sockmux.NewPeer(&sockmux.PeerConfig{Logger: slog.New(slog.DiscardHandler), Backoff: time.Hour,
				Identity: tc.key, PeerKey: &stdioKey.Public,
				Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: echo}},
				OnLink:   func(ev sockmux.LinkEvent) { up <- ev }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { node.Close() })
			node.Connect(&pipeDialer{conn: c.conn})
			if !tc.admit {
				select {
				case err := <-c.exited:
					var ee *exec.ExitError
					if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(c.stderr.String(), "not in the authorized keys") {
						t.Fatalf("sockmux stdio exited with %v, want status 1 naming the authorized keys:\n%s", err, c.stderr.String())
					}
				case <-time.After(20 * time.Second): // hang guard
					_ = c.cmd.Process.Kill()
					<-c.exited
					t.Fatalf("sockmux stdio admitted an unlisted key:\n%s", c.stderr.String())
				}
				return
			}
			select {
			case ev := <-up:
				if !ev.Up {
					t.Fatalf("link down: %v\n%s", ev.Err, c.stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no link; stdio's stderr:\n%s", c.stderr.String())
			}
			carrierBody(t, node.ForwardAddrs()[0].String())
			node.Close()
			if err := <-c.exited; err != nil {
				t.Fatalf("sockmux stdio: %v\n%s", err, c.stderr.String())
			}
		})
	}
}
