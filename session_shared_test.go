package sockmux_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestSessionsShareNothingVisible: every Session runs on the process's one
// actor system (actors.SharedSystem), and two session pairs on it see
// nothing of each other: streams with the same ids carry each pair's own
// bytes to its own acceptor, a refusal and a lost carrier in one pair are
// not errors in the other, and closing one pair leaves the other's streams
// running.
func TestSessionsShareNothingVisible(t *testing.T) {
	testkit.CheckLeaks(t)
	acfg := sockmux.DefaultConfig()
	acfg.ResumeWindow = -1
	acfg.AcceptBacklog = 1
	ac, as := net.Pipe()
	a1, a2, cerr, serr := startBoth(ac, as, acfg, acfg)
	if cerr != nil || serr != nil {
		t.Fatalf("pair A: %v, %v", cerr, serr)
	}
	t.Cleanup(func() { a1.Close(); a2.Close() })
	b1, b2 := sessions(t, pipePair, nil, nil)

	// The same target, the same first stream id on both pairs: each
	// acceptor gets its own pair's stream and bytes.
	ax, ay := streamPair(t, a1, a2, "same")
	bx, by := streamPair(t, b1, b2, "same")
	echo := func(name string, x, y *sockmux.Stream, msg string) {
		t.Helper()
		if _, err := x.Write([]byte(msg)); err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(y, got); err != nil || string(got) != msg {
			t.Fatalf("%s: read %q, %v; want %q", name, got, err, msg)
		}
	}
	echo("A", ax, ay, "for A only")
	echo("B", bx, by, "for B only")

	// A refusal in A (its backlog of one is full) is A's alone: B's
	// acceptor is not touched, and B opens and accepts as before.
	if _, err := a1.Open(context.Background(), "backlog"); err != nil {
		t.Fatal(err)
	}
	refused, err := a1.Open(context.Background(), "refused")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := refused.Read(make([]byte, 1)); !errors.Is(err, sockmux.ErrRefused) {
		t.Fatalf("A's second waiting stream: %v, want a refusal", err)
	}
	bx2, by2 := streamPair(t, b1, b2, "second")
	if by2.Target() != "second" {
		t.Fatalf("B accepted %q, want its own stream", by2.Target())
	}
	echo("B's second", by2, bx2, "still B")

	// A loses its carrier: A's sessions end with its reason, its streams
	// are reset; B's see no error and carry on.
	ac.Close()
	<-a1.Done()
	<-a2.Done()
	if _, err := ay.Read(make([]byte, 1)); !errors.Is(err, sockmux.ErrStreamReset) {
		t.Errorf("A's stream after its carrier was lost: %v, want a reset", err)
	}
	if b1.Err() != nil || b2.Err() != nil {
		t.Fatalf("B ended with A: %v, %v", b1.Err(), b2.Err())
	}
	echo("B after A's end", bx, by, "B goes on")
	echo("B back", by, bx, "both ways")

	// Closing A's sessions (already ended) does nothing to B either.
	a1.Close()
	a2.Close()
	echo("B after A's Close", bx2, by2, "and on")
	bx3, by3 := streamPair(t, b1, b2, "third")
	echo("B's third", bx3, by3, "new streams too")
	for _, s := range []*sockmux.Stream{bx, by, bx2, by2, bx3, by3} {
		s.Close()
	}
}

// TestSmallReadsKeepCreditFlowing: a Read tells the stream of what it
// read only once it adds up to an eighth of the window (as the window
// grows, an eighth of the grown one), and the peer still never runs out
// of credit, whatever the read size: several windows go through small
// windows, and through one that may grow 64 times, in reads from one byte
// up.
func TestSmallReadsKeepCreditFlowing(t *testing.T) {
	for _, w := range []struct{ window, max uint32 }{{1024, 1024}, {64 << 10, 64 << 10}, {1024, 64 << 10}} {
		for _, readSize := range []int{1, 100, 4096} {
			t.Run(fmt.Sprintf("window=%d-%d/read=%d", w.window, w.max, readSize), func(t *testing.T) {
				testkit.CheckLeaks(t)
				cfg := sockmux.DefaultConfig()
				cfg.Window, cfg.MaxWindow = w.window, w.max
				client, server := sessions(t, pipePair, cfg, cfg)
				c, s := streamPair(t, client, server, "small reads")
				defer c.Close()
				defer s.Close()
				total := 4*int(w.max) + 7
				if readSize == 1 && w.max > 1024 {
					total = int(w.max) + int(w.max)/2 + 7
				}
				want := make([]byte, total)
				for i := range want {
					want[i] = byte(i * 7)
				}
				go func() {
					c.Write(want)
					c.CloseWrite()
				}()
				got := make([]byte, 0, total)
				buf := make([]byte, readSize)
				for {
					n, err := s.Read(buf)
					got = append(got, buf[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("after %d bytes: %v", len(got), err)
					}
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("got %d bytes, want %d (or they differ)", len(got), len(want))
				}
			})
		}
	}
}
