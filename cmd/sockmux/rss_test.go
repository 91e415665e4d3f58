//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// rssOf is the resident memory of process pid, from /proc.
func rssOf(t testing.TB, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read a process's memory from: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// hose serves a target that writes as fast as it is read, for ever.
func hose(t testing.TB) string {
	buf := make([]byte, 256<<10)
	return testkit.Serve(t, func(c net.Conn) {
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
}

// TestHostileRSS runs the review's memory attacks against a real "sockmux
// listen" process, each from a peer that passed the handshake (a keyless
// loopback listener) and never reads: a HELLO announcing a 1 GiB window
// with 4 OPENs to a fast source, a PING flood, a flood of refused OPENs.
// The listener stays under 200 MB resident meanwhile, a good link beside
// the attacker carries a checksummed transfer intact, and once the
// attacker is gone the memory goes back to the OS.
func TestHostileRSS(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector multiplies the listener's memory: its resident bound is checked without -race")
	}
	const bound = 200 << 20
	source := hose(t)
	echo := testkit.Echo(t)
	floods := func(n int, frame func(p *wirepeer.Peer, b []byte, i int) []byte) func(p *wirepeer.Peer) error {
		return func(p *wirepeer.Peer) error {
			var b []byte
			for i := range n {
				if b = frame(p, b, i); len(b) >= 256<<10 {
					if err := p.Write(b); err != nil {
						return err
					}
					b = b[:0]
				}
			}
			return p.Write(b)
		}
	}
	// Beside a thousand open streams, a flood of frames that each want a
	// reply, from a peer that reads them all: the replies must not pile
	// up in the link's Scheduler faster than it takes them (3.9 GB in 15 s
	// before the carrier's reader waited for it).
	sink := testkit.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	reading := func(n int, frame func(p *wirepeer.Peer, b []byte, i int) []byte) func(p *wirepeer.Peer) error {
		return func(p *wirepeer.Peer) error {
			var b []byte
			for range 1024 {
				b = p.Append(b, engine.TypeOpen, p.NextID(), wirepeer.OpenPayload(engine.TargetDial, sink, nil))
			}
			if err := p.Write(b); err != nil {
				return err
			}
			go func() { // reads all, keeps nothing, until the connection ends
				for {
					if _, err := p.ReadFrame(time.Minute); err != nil {
						return
					}
				}
			}()
			return floods(n, frame)(p)
		}
	}
	cases := []struct {
		name   string
		opts   wirepeer.Options
		attack func(p *wirepeer.Peer) error
	}{
		// No attack: the good link's rate beside the others' is a ratio
		// to this one (logged; speed is for benchmarks, not asserts).
		{"no attack", wirepeer.Options{}, func(*wirepeer.Peer) error { return nil }},
		{"1 GiB window, 4 streams from a fast source", wirepeer.Options{Window: engine.MaxWindow, RecvBuffer: 128 << 10},
			func(p *wirepeer.Peer) error {
				var b []byte
				for range 4 {
					b = p.Append(b, engine.TypeOpen, p.NextID(), wirepeer.OpenPayload(engine.TargetDial, source, nil))
				}
				return p.Write(b)
			}},
		{"1 GiB window, 4 streams, CapSeq", wirepeer.Options{Window: engine.MaxWindow, RecvBuffer: 128 << 10, Seq: true},
			func(p *wirepeer.Peer) error {
				var b []byte
				for range 4 {
					b = p.Append(b, engine.TypeOpen, p.NextID(), wirepeer.OpenPayload(engine.TargetDial, source, nil))
				}
				return p.Write(b)
			}},
		{"PING flood", wirepeer.Options{RecvBuffer: 128 << 10}, floods(2_000_000, func(p *wirepeer.Peer, b []byte, i int) []byte {
			return p.Append(b, engine.TypePing, 0, wirepeer.PingPayload(uint64(i)))
		})},
		{"refused OPEN flood", wirepeer.Options{RecvBuffer: 128 << 10}, floods(300_000, func(p *wirepeer.Peer, b []byte, _ int) []byte {
			return p.Append(b, engine.TypeOpen, p.NextID(), wirepeer.OpenPayload(engine.TargetDial, "10.255.255.1:9", nil))
		})},
		{"PING flood beside 1024 streams, read", wirepeer.Options{}, reading(4_000_000, func(p *wirepeer.Peer, b []byte, i int) []byte {
			return p.Append(b, engine.TypePing, 0, wirepeer.PingPayload(uint64(i)))
		})},
		{"OPENs past the stream limit, read", wirepeer.Options{}, reading(2_000_000, func(p *wirepeer.Peer, b []byte, _ int) []byte {
			return p.Append(b, engine.TypeOpen, p.NextID(), wirepeer.OpenPayload(engine.TargetDial, sink, nil))
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			link, fwd := testkit.FreeAddr(t), testkit.FreeAddr(t)
			listen := startLimited(t, 4096, "listen", "--drain", "0s", link)
			listen.waitLine(t, "listening for links", `msg="listening for links"`)
			pid := listen.cmd.Process.Pid

			// The good link: a connect with a -L to the echo server, which
			// the listener dials.
			runBG(t, "connect", "--drain", "0s", "-L", fwd+":"+echo, link)
			listen.waitLine(t, "the good link", `msg="link up"`)

			p := wirepeer.Connect(t, link, tc.opts)
			attacked := make(chan error, 1)
			go func() { attacked <- tc.attack(p) }()
			var peak int64
			sample := time.NewTicker(10 * time.Millisecond)
			defer sample.Stop()
			good := make(chan error, 1)
			var goodTook atomic.Int64
			go func() {
				c, err := net.Dial("tcp", fwd)
				if err != nil {
					good <- err
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				start := time.Now()
				err = testkit.EchoCheck(c, 5, 32<<20)
				goodTook.Store(int64(time.Since(start)))
				good <- err
			}()
			// Sample while the good transfer runs and for 2 s of attack.
			until := time.After(2 * time.Second)
			for done, over := false, false; !done || !over; {
				select {
				case err := <-good:
					if err != nil {
						t.Errorf("the good link's transfer during the attack: %v", err)
					}
					done = true
				case <-until:
					over = true
				case <-sample.C:
					peak = max(peak, rssOf(t, pid))
				}
			}
			t.Logf("listener resident: peak %d MiB during the attack; the good link echoed 32 MiB at %.0f MB/s",
				peak>>20, 32<<20/time.Duration(goodTook.Load()).Seconds()/1e6)
			if peak > bound {
				t.Errorf("the listener reached %d MiB resident; the bound is %d MiB", peak>>20, bound>>20)
			}
			// The attacker leaves: the memory goes back.
			p.Conn().Close()
			<-attacked
			if tc.opts.Seq { // the link waits to be resumed, holding what is bounded
				listen.waitLine(t, "the attacker's link waiting to resume", `msg="link lost its last carrier; waiting to resume it"`)
			} else {
				listen.waitLine(t, "the attacker's link down", `msg="link down"`)
			}
			deadline := time.Now().Add(20 * time.Second)
			for rssOf(t, pid) > 100<<20 {
				if time.Now().After(deadline) {
					t.Fatalf("the listener still holds %d MiB resident after the attacker left", rssOf(t, pid)>>20)
				}
				<-sample.C
			}
		})
	}
}
