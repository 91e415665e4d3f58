package actors

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestShareSlowClient: a client that stops reading has its oldest data
// dropped (counted, logged) or is disconnected, per policy, while the two
// others receive everything intact.
func TestShareSlowClient(t *testing.T) {
	const (
		size   = 8 << 20
		block  = 32 << 10
		lag    = 128 << 10 // the most the fast clients may trail the upstream
		bufLen = 256 << 10
	)
	for _, policy := range []SlowPolicy{SlowDrop, SlowDisconnect} {
		t.Run(policy.String(), func(t *testing.T) {
			testkit.CheckLeaks(t)
			spec, accept := tcpKind().start(t)
			s, rec := startShare(t, ShareConfig{Upstream: spec, ClientBuffer: bufLen, Slow: policy,
				dropLogInterval: 50 * time.Millisecond})
			far := accept(t)
			a, b := joinClient(t, s, rec, nil), joinClient(t, s, rec, nil)
			// The slow client has a tiny receive buffer and never reads.
			slow := joinClient(t, s, rec, testkit.RecvBufferDialer(4096))
			var (
				mu    sync.Mutex
				recvd [2]int
				moved = make(chan struct{})
			)
			sums := make(chan [32]byte, 2)
			errs := make(chan error, 2)
			for i, c := range []net.Conn{a, b} {
				go func() {
					c.SetReadDeadline(time.Now().Add(shareLimit))
					h := sha256.New()
					buf := make([]byte, 64<<10)
					var err error
					for n := 0; n < size && err == nil; {
						var k int
						k, err = c.Read(buf[:min(len(buf), size-n)])
						h.Write(buf[:k])
						n += k
						mu.Lock()
						recvd[i] = n
						close(moved)
						moved = make(chan struct{})
						mu.Unlock()
					}
					var sum [32]byte
					copy(sum[:], h.Sum(nil))
					sums <- sum
					errs <- err
				}()
			}
			// The upstream writes as fast as the fast clients read: they
			// never fall more than lag behind, so only the slow client
			// overflows.
			want := sha256.New()
			for sent := 0; sent < size; sent += block {
				deadline := time.After(shareLimit)
				for {
					mu.Lock()
					ok, ch := min(recvd[0], recvd[1]) >= sent-lag, moved
					mu.Unlock()
					if ok {
						break
					}
					select {
					case <-ch:
					case <-deadline:
						t.Fatalf("the fast clients stalled at %v of %d sent", recvd, sent)
					}
				}
				p := testkit.Payload(uint64(sent), block)
				want.Write(p)
				if _, err := far.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("fast client: %v", err)
				}
				if got := <-sums; !bytes.Equal(got[:], want.Sum(nil)) {
					t.Fatal("a fast client received different bytes")
				}
			}
			slowAddr := slow.LocalAddr().String()
			switch policy {
			case SlowDrop:
				rec.Wait(t, shareLimit, "the drop logged", func(r testkit.Record) bool {
					return r.Msg == "slow client: dropping its oldest data" && r.Attrs["client"] == slowAddr
				})
				// Nothing dropped silently: the slow client now reads,
				// and receives all that was not dropped. (The hub may
				// still be handing the last chunks to it when the fast
				// clients have them: its drops are known once it has
				// everything.)
				var read atomic.Int64
				done := make(chan struct{})
				go func() {
					defer close(done)
					slow.SetReadDeadline(time.Now().Add(shareLimit))
					buf := make([]byte, 64<<10)
					for {
						n, err := slow.Read(buf)
						read.Add(int64(n))
						if err != nil {
							return
						}
					}
				}()
				var st ShareStats
				shareWaitFor(t, "the slow client to receive all that was not dropped", func() bool {
					st = s.Stats()
					if len(st.Clients) != 3 {
						return false
					}
					c := st.Clients[2]
					return c.Queued == 0 && c.Out+c.Dropped == size && read.Load() == c.Out &&
						st.Clients[0].Out == size && st.Clients[1].Out == size
				})
				slow.Close()
				<-done
				sc := st.Clients[2]
				if sc.Addr != slowAddr || sc.Dropped == 0 || st.Clients[0].Dropped != 0 || st.Clients[1].Dropped != 0 || st.Dropped != sc.Dropped {
					t.Fatalf("drop counts: %+v", st)
				}
				if read.Load() != size-sc.Dropped {
					t.Fatalf("slow client read %d bytes, not the %d not dropped", read.Load(), size-sc.Dropped)
				}
				rec.Wait(t, shareLimit, "the drops reported", func(r testkit.Record) bool {
					return r.Msg == "slow client dropped data" && r.Attrs["client"] == slowAddr
				})
			case SlowDisconnect:
				rec.Wait(t, shareLimit, "the disconnect logged", func(r testkit.Record) bool {
					return r.Msg == "slow client disconnected" && r.Attrs["client"] == slowAddr
				})
				rec.Wait(t, shareLimit, "the slow client left", func(r testkit.Record) bool {
					return r.Msg == "client left" && r.Attrs["client"] == slowAddr
				})
				slow.SetReadDeadline(time.Now().Add(shareLimit))
				_, err := io.Copy(io.Discard, slow)
				if err != nil && !testkit.IsClosed(err) {
					t.Fatalf("the slow client was not closed: %v", err)
				}
				st := s.Stats()
				if len(st.Clients) != 2 || st.SlowDisconnects != 1 || st.Dropped != 0 {
					t.Fatalf("stats after the disconnect: %+v", st)
				}
			}
		})
	}
}

// TestShareReplay: a new client first receives the last --replay bytes
// the upstream sent, then what it sends next.
func TestShareReplay(t *testing.T) {
	cases := []struct {
		name         string
		replay, sent int
	}{
		{"none", 0, 5000},
		{"tail", 4096, 10000},
		{"all of less", 64 << 10, 10000},
		{"many chunks, wrapped", 200 << 10, 700 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			spec, accept := tcpKind().start(t)
			s, rec := startShare(t, ShareConfig{Upstream: spec, Replay: tc.replay})
			far := accept(t)
			before := testkit.Payload(11, tc.sent)
			// Written in pieces, so the ring wraps on a long history.
			for p := before; len(p) > 0; {
				n := min(len(p), 3000)
				if _, err := far.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			shareWaitFor(t, "the upstream's bytes to reach the hub", func() bool { return s.Stats().FromUpstream == int64(tc.sent) })
			c := joinClient(t, s, rec, nil)
			after := []byte("\r\nafter the client joined\r\n")
			if _, err := far.Write(after); err != nil {
				t.Fatal(err)
			}
			keep := min(tc.replay, tc.sent)
			want := append(append([]byte(nil), before[tc.sent-keep:]...), after...)
			readExpect(t, c, want, "replay then live bytes")
			joined := rec.Wait(t, shareLimit, "join", func(r testkit.Record) bool { return r.Msg == "client joined" })
			if tc.replay > 0 && fmt.Sprint(joined.Attrs["replay"]) != fmt.Sprint(keep) {
				t.Fatalf("join logged replay=%v, want %d", joined.Attrs["replay"], keep)
			}
		})
	}
}
