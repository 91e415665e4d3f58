package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"sockmux/actors"
	"sockmux/carriers"
	"sockmux/engine"
	"sockmux/internal/testkit"
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
	toChild, fromParent, err := os.Pipe() // child's stdin
	if err != nil {
		t.Fatal(err)
	}
	fromChild, toParent, err := os.Pipe() // child's stdout
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "stdio", "--drain", "0s")
	cmd.Env = append(os.Environ(), "SOCKMUX_TEST_MAIN=1")
	cmd.Stdin, cmd.Stdout = toChild, toParent
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toChild.Close()
	toParent.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	up := make(chan actors.LinkEvent, 4)
	node, err := actors.NewNode(actors.Config{Logger: slog.New(slog.DiscardHandler), Backoff: time.Hour,
		Forwards: []engine.Forward{{Bind: "127.0.0.1:0", Target: echo}},
		OnLink:   func(ev actors.LinkEvent) { up <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	node.Connect(&pipeDialer{conn: carriers.Stdio(fromChild, fromParent)})
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
			node, err := actors.NewNode(actors.Config{Logger: slog.New(slog.DiscardHandler), Backoff: time.Hour,
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
			toChild, fromParent, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			fromChild, toParent, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "stdio", "--drain", "0s", "--key-file", keyFile)
			cmd.Env = append(os.Environ(), "SOCKMUX_TEST_MAIN=1")
			cmd.Stdin, cmd.Stdout = toChild, toParent
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			toChild.Close()
			toParent.Close()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() { fromChild.Close(); fromParent.Close() })
			if tc.peer == nil {
				fromParent.Close()
			} else {
				tc.peer(t, carriers.Stdio(fromChild, fromParent))
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
