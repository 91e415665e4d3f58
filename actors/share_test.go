package actors

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
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
