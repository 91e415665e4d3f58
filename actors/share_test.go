package actors

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// shareLimit bounds every wait of the share tests.
const shareLimit = 30 * time.Second

// startShare starts a share on a loopback port with cfg (fast redials),
// logging into a recorder; it closes when the test ends.
func startShare(t testing.TB, cfg ShareConfig) (*Share, *testkit.Recorder) {
	t.Helper()
	rec := testkit.NewRecorder()
	cfg.Logger = slog.New(rec)
	cfg.Listen = "127.0.0.1:0"
	if cfg.backoff == 0 {
		cfg.backoff, cfg.maxBackoff = 10*time.Millisecond, 100*time.Millisecond
	}
	s, err := NewShare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			for _, r := range rec.Records() {
				t.Logf("log: %s %s %v", r.Level, r.Msg, r.Attrs)
			}
		}
	})
	return s, rec
}

// joinClient connects a client to s and waits for the share to log it.
func joinClient(t testing.TB, s *Share, rec *testkit.Recorder, dialer *net.Dialer) net.Conn {
	t.Helper()
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	c, err := dialer.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	addr := c.LocalAddr().String()
	rec.Wait(t, shareLimit, "client joined "+addr, func(r testkit.Record) bool {
		return r.Msg == "client joined" && r.Attrs["client"] == addr
	})
	return c
}

// waitFor polls cond until it holds, failing after shareLimit.
func shareWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(shareLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// upsCount counts the log records with msg.
func countLogs(rec *testkit.Recorder, msg string) int {
	n := 0
	for _, r := range rec.Records() {
		if r.Msg == msg {
			n++
		}
	}
	return n
}

// readFull reads len(want) bytes from c (with a deadline as a guard) and
// fails unless they are want.
func readExpect(t testing.TB, c net.Conn, want []byte, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(shareLimit))
	defer c.SetReadDeadline(time.Time{})
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("%s: reading %d bytes: %v", what, len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, clip(got), clip(want))
	}
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return append(append([]byte(nil), b[:64]...), "..."...)
	}
	return b
}

// farEnd is the upstream as a test plays it: what it writes goes to the
// clients, what it reads is what they sent.
type farEnd = io.ReadWriteCloser

// upstreamKind is one kind of UPSTREAM the test plays the far end of.
type upstreamKind struct {
	name string
	// start returns the UPSTREAM and a function that waits for sockmux to
	// reach the far end (again, after a drop) and returns it.
	start func(t testing.TB) (spec string, accept func(t testing.TB) farEnd)
	// restart, when set, makes the far end reachable again after the test
	// closed it (a TCP server starting again on the same port).
	restart func(t testing.TB)
}

// tcpKind is a TCP server on loopback.
func tcpKind() upstreamKind {
	var (
		mu   sync.Mutex
		ln   net.Listener
		addr string
	)
	listen := func(t testing.TB) {
		t.Helper()
		a := addr
		if a == "" {
			a = "127.0.0.1:0"
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		ln, addr = l, l.Addr().String()
		mu.Unlock()
		t.Cleanup(func() { l.Close() })
	}
	return upstreamKind{
		name: "tcp",
		start: func(t testing.TB) (string, func(testing.TB) farEnd) {
			listen(t)
			return "tcp://" + addr, func(t testing.TB) farEnd {
				t.Helper()
				mu.Lock()
				l := ln
				mu.Unlock()
				type res struct {
					c   net.Conn
					err error
				}
				ch := make(chan res, 1)
				go func() {
					c, err := l.Accept()
					ch <- res{c, err}
				}()
				select {
				case r := <-ch:
					if r.err != nil {
						t.Fatal(r.err)
					}
					l.Close() // one upstream connection at a time
					t.Cleanup(func() { r.c.Close() })
					return r.c
				case <-time.After(shareLimit):
					l.Close()
					t.Fatal("sockmux never dialled the upstream")
					return nil
				}
			}
		},
		restart: listen,
	}
}

// fifoKind is a pair of named pipes whose far end the test opens itself,
// as the seed's README does with cat <>up and cat >down.
func fifoKind() upstreamKind {
	return upstreamKind{
		name: "fifo",
		start: func(t testing.TB) (string, func(testing.TB) farEnd) {
			dir := t.TempDir()
			rpath, wpath := filepath.Join(dir, "down"), filepath.Join(dir, "up") // sockmux reads down, writes up
			testkit.Mkfifo(t, rpath, wpath)
			return "fifo:" + rpath + "," + wpath, func(t testing.TB) farEnd {
				t.Helper()
				type res struct {
					f   *fifoFar
					err error
				}
				ch := make(chan res, 1)
				go func() {
					// sockmux opens down to read, then up to write.
					w, err := os.OpenFile(rpath, os.O_WRONLY, 0)
					if err != nil {
						ch <- res{nil, err}
						return
					}
					r, err := os.OpenFile(wpath, os.O_RDONLY, 0)
					if err != nil {
						w.Close()
						ch <- res{nil, err}
						return
					}
					ch <- res{&fifoFar{r: r, w: w}, nil}
				}()
				select {
				case r := <-ch:
					if r.err != nil {
						t.Fatal(r.err)
					}
					t.Cleanup(func() { r.f.Close() })
					return r.f
				case <-time.After(shareLimit):
					t.Fatal("sockmux never opened the pipes")
					return nil
				}
			}
		},
	}
}

type fifoFar struct{ r, w *os.File }

func (f *fifoFar) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f *fifoFar) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f *fifoFar) Close() error {
	f.w.Close()
	return f.r.Close()
}

func farKinds() []upstreamKind { return []upstreamKind{tcpKind(), fifoKind()} }

// TestShareBroadcast: three clients receive identical upstream bytes,
// several MB of them, checksummed; nothing is dropped.
func TestShareBroadcast(t *testing.T) {
	const size = 6 << 20
	for _, k := range farKinds() {
		t.Run(k.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			spec, accept := k.start(t)
			s, rec := startShare(t, ShareConfig{Upstream: spec, ClientBuffer: 2 * size})
			far := accept(t)
			clients := []net.Conn{joinClient(t, s, rec, nil), joinClient(t, s, rec, nil), joinClient(t, s, rec, nil)}
			sums := make(chan [32]byte, len(clients))
			errs := make(chan error, len(clients))
			for _, c := range clients {
				go func() {
					c.SetReadDeadline(time.Now().Add(shareLimit))
					h := sha256.New()
					_, err := io.CopyN(h, c, size)
					var sum [32]byte
					copy(sum[:], h.Sum(nil))
					sums <- sum
					errs <- err
				}()
			}
			want, err := testkit.Stream(far, 7, size)
			if err != nil {
				t.Fatal(err)
			}
			for range clients {
				if err := <-errs; err != nil {
					t.Fatalf("client read: %v", err)
				}
				if got := <-sums; got != want {
					t.Fatalf("a client received different bytes (sha256 %x, want %x)", got, want)
				}
			}
			st := s.Stats()
			if st.Dropped != 0 || st.FromUpstream != size || len(st.Clients) != 3 || !st.UpstreamUp {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// chunkHeader is the test's chunk: client id, sequence number, length.
const chunkHeader = 7

func chunkBody(id byte, seq uint32, n int) []byte {
	return testkit.Payload(uint64(id)<<32|uint64(seq), n)
}

// TestShareInputWhole: three clients write distinctive chunks at once;
// every chunk reaches the upstream whole, never interleaved with another
// client's, and each client's chunks in order.
func TestShareInputWhole(t *testing.T) {
	const (
		nClients = 3
		nChunks  = 400
		inFlight = 32 << 10 // per client: the most written and not yet seen upstream
	)
	for _, k := range farKinds() {
		t.Run(k.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			spec, accept := k.start(t)
			s, rec := startShare(t, ShareConfig{Upstream: spec})
			far := accept(t)
			var clients []net.Conn
			for range nClients {
				clients = append(clients, joinClient(t, s, rec, nil))
			}
			// progress[i] is how many bytes of client i the upstream has
			// checked; moved is closed (and replaced) when it grows.
			var (
				mu       sync.Mutex
				progress [nClients]int
				moved    = make(chan struct{})
				farErr   error
			)
			total := 0
			sizes := make([][]int, nClients)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range sizes {
				for range nChunks {
					n := 16 + r.IntN(4096)
					sizes[i] = append(sizes[i], n)
					total += chunkHeader + n
				}
			}
			farDone := make(chan struct{})
			go func() {
				defer close(farDone)
				next := make([]uint32, nClients)
				hdr := make([]byte, chunkHeader)
				fail := func(err error) {
					mu.Lock()
					farErr = err
					close(moved)
					moved = make(chan struct{})
					mu.Unlock()
				}
				for got := 0; got < total; {
					if _, err := io.ReadFull(far, hdr); err != nil {
						fail(fmt.Errorf("reading a chunk header after %d bytes: %w", got, err))
						return
					}
					id, seq, n := hdr[0], binary.BigEndian.Uint32(hdr[1:5]), int(binary.BigEndian.Uint16(hdr[5:7]))
					if int(id) >= nClients || seq != next[id] || seq >= nChunks || n != sizes[id][seq] {
						fail(fmt.Errorf("after %d bytes: header %x is not the next chunk of any client (chunks interleaved?)", got, hdr))
						return
					}
					body := make([]byte, n)
					if _, err := io.ReadFull(far, body); err != nil {
						fail(err)
						return
					}
					if !bytes.Equal(body, chunkBody(id, seq, n)) {
						fail(fmt.Errorf("chunk %d of client %d arrived broken (interleaved with another's bytes?)", seq, id))
						return
					}
					next[id]++
					got += chunkHeader + n
					mu.Lock()
					progress[id] += chunkHeader + n
					close(moved)
					moved = make(chan struct{})
					mu.Unlock()
				}
			}()
			var wg sync.WaitGroup
			errs := make(chan error, nClients)
			for i, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sent := 0
					for seq, n := range sizes[i] {
						chunk := make([]byte, chunkHeader, chunkHeader+n)
						chunk[0] = byte(i)
						binary.BigEndian.PutUint32(chunk[1:5], uint32(seq))
						binary.BigEndian.PutUint16(chunk[5:7], uint16(n))
						chunk = append(chunk, chunkBody(byte(i), uint32(seq), n)...)
						// Keep at most inFlight bytes between this client
						// and the upstream, so that each chunk reaches
						// sockmux in one TCP segment (one write never
						// splits) and one read takes whole chunks.
						deadline := time.After(shareLimit)
						for {
							mu.Lock()
							ok, ch, ferr := sent-progress[i]+len(chunk) <= inFlight, moved, farErr
							mu.Unlock()
							if ferr != nil {
								return
							}
							if ok {
								break
							}
							select {
							case <-ch:
							case <-deadline:
								errs <- fmt.Errorf("client %d: the upstream stopped taking its chunks", i)
								return
							}
						}
						if _, err := c.Write(chunk); err != nil {
							errs <- err
							return
						}
						sent += len(chunk)
					}
				}()
			}
			wg.Wait()
			select {
			case <-farDone:
			case <-time.After(shareLimit):
				t.Fatal("the upstream did not get every chunk")
			}
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if farErr != nil {
				t.Fatal(farErr)
			}
			shareWaitFor(t, "ToUpstream to count every byte", func() bool { return s.Stats().ToUpstream == int64(total) })
		})
	}
}

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
