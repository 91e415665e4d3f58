package actors

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// shareRead is what one client read: its byte count and SHA-256.
type shareRead struct {
	n   int64
	sum [32]byte
	err error
}

// readAll reads size bytes from c, readSize at a time, into a SHA-256,
// counting them in got as it goes.
func readAll(c net.Conn, size int64, readSize int, got *atomic.Int64) <-chan shareRead {
	out := make(chan shareRead, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(2 * shareLimit))
		h := sha256.New()
		buf := make([]byte, readSize)
		var r shareRead
		for r.n < size && r.err == nil {
			var k int
			k, r.err = c.Read(buf[:min(int64(len(buf)), size-r.n)])
			h.Write(buf[:k])
			r.n += int64(k)
			if got != nil {
				got.Store(r.n)
			}
		}
		copy(r.sum[:], h.Sum(nil))
		out <- r
	}()
	return out
}

// checkReads fails unless every client read size bytes summing to want.
func checkReads(t testing.TB, reads []<-chan shareRead, size int64, want [32]byte) {
	t.Helper()
	for i, ch := range reads {
		r := <-ch
		if r.err != nil || r.n != size {
			t.Fatalf("client %d read %d of %d bytes: %v", i, r.n, size, r.err)
		}
		if r.sum != want {
			t.Fatalf("client %d received %d bytes, but not the upstream's (sha256 %x, want %x)", i, size, r.sum, want)
		}
	}
}

// tinyReceiveBuffer is a dialer whose connections have a 4 KiB receive
// buffer: a client that does not read is stuck at once.
var tinyReceiveBuffer = testkit.RecvBufferDialer(4096)

// TestShareWaitLosesNothing: with the defaults (--slow wait, a 1 MiB
// buffer), an upstream that sends 64 MiB as fast as it can to three
// clients reading at ordinary speeds (4 KiB, 32 KiB and 256 KiB reads)
// loses none of it for any of them: the upstream waits for the slowest.
// (With --slow drop, the old default, each lost part of it.)
func TestShareWaitLosesNothing(t *testing.T) {
	testkit.CheckLeaks(t)
	const size = 64 << 20
	spec, accept := tcpKind().start(t)
	s, rec := startShare(t, ShareConfig{Upstream: spec})
	far := accept(t)
	var reads []<-chan shareRead
	for _, readSize := range []int{4 << 10, 32 << 10, 256 << 10} {
		reads = append(reads, readAll(joinClient(t, s, rec, nil), size, readSize, nil))
	}
	want, err := testkit.Stream(far, 1, size)
	if err != nil {
		t.Fatal(err)
	}
	checkReads(t, reads, size, want)
	// (A writer counts its write once it returns: after its client may
	// have read it.)
	var st ShareStats
	shareWaitFor(t, "the writers' counts", func() bool {
		st = s.Stats()
		return len(st.Clients) == 3 && st.Clients[0].Out == size && st.Clients[1].Out == size && st.Clients[2].Out == size
	})
	if st.FromUpstream != size || st.Dropped != 0 || st.SlowDisconnects != 0 {
		t.Fatalf("stats: %+v", st)
	}
	for _, c := range st.Clients {
		if c.Dropped != 0 || c.Queued != 0 || c.Full {
			t.Fatalf("client stats: %+v", c)
		}
	}
	r := rec.Wait(t, shareLimit, "share listening", func(r testkit.Record) bool { return r.Msg == "share listening" })
	if r.Attrs["slow"] != "wait" || r.Attrs["slow_timeout"] != DefaultSlowTimeout {
		t.Fatalf("the default policy logged as %v, %v; want wait, 10s", r.Attrs["slow"], r.Attrs["slow_timeout"])
	}
}

// TestShareWaitPausedClient: a client that stops reading holds the
// upstream (the others stop receiving too) for as long as its buffer is
// full; once it reads again, within the slow timeout, everyone, it
// included, gets everything.
func TestShareWaitPausedClient(t *testing.T) {
	testkit.CheckLeaks(t)
	const (
		size   = 16 << 20
		bufLen = 256 << 10
	)
	spec, accept := tcpKind().start(t)
	s, rec := startShare(t, ShareConfig{Upstream: spec, ClientBuffer: bufLen, SlowTimeout: time.Minute})
	far := accept(t)
	var got [2]atomic.Int64
	reads := []<-chan shareRead{
		readAll(joinClient(t, s, rec, nil), size, 32<<10, &got[0]),
		readAll(joinClient(t, s, rec, nil), size, 32<<10, &got[1]),
	}
	paused := joinClient(t, s, rec, tinyReceiveBuffer)
	sent := make(chan [32]byte, 1)
	go func() {
		sum, err := testkit.Stream(far, 3, size)
		if err != nil {
			t.Error(err)
		}
		sent <- sum
	}()
	// The paused client's buffer fills, and the upstream stops: the
	// others, who would take more, receive what the upstream sent before
	// and then wait with it, while the paused client's buffer is full.
	var st ShareStats
	shareWaitFor(t, "the others to wait with the upstream for the paused client", func() bool {
		st = s.Stats()
		return len(st.Clients) == 3 && st.UpstreamPaused && st.Clients[2].Full &&
			got[0].Load() == st.FromUpstream && got[1].Load() == st.FromUpstream && s.Stats().FromUpstream == st.FromUpstream
	})
	if st.FromUpstream >= size || st.Clients[2].Out >= st.FromUpstream {
		t.Fatalf("the upstream sent %d of %d bytes past a full client: %+v", st.FromUpstream, size, st)
	}
	reads = append(reads, readAll(paused, size, 32<<10, nil))
	want := <-sent
	checkReads(t, reads, size, want)
	st = s.Stats()
	if st.Dropped != 0 || st.SlowDisconnects != 0 || len(st.Clients) != 3 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestShareWaitStuckClient: a client that stops reading for good is
// disconnected once its buffer has been full for the slow timeout, and
// logged with its address and why; the upstream waited for it meanwhile
// (its buffer grew no further), and the two others receive everything.
func TestShareWaitStuckClient(t *testing.T) {
	testkit.CheckLeaks(t)
	const (
		size    = 16 << 20
		bufLen  = 1 << 20 // the fast clients, who keep up, never fill it
		timeout = 200 * time.Millisecond
	)
	spec, accept := tcpKind().start(t)
	s, rec := startShare(t, ShareConfig{Upstream: spec, ClientBuffer: bufLen, SlowTimeout: timeout})
	far := accept(t)
	reads := []<-chan shareRead{
		readAll(joinClient(t, s, rec, nil), size, 64<<10, nil),
		readAll(joinClient(t, s, rec, nil), size, 4<<10, nil),
	}
	stuck := joinClient(t, s, rec, tinyReceiveBuffer)
	stuckAddr := stuck.LocalAddr().String()
	sent := make(chan [32]byte, 1)
	go func() {
		sum, err := testkit.Stream(far, 2, size)
		if err != nil {
			t.Error(err)
		}
		sent <- sum
	}()
	r := rec.Wait(t, shareLimit, "the stuck client disconnected", func(r testkit.Record) bool {
		return r.Msg == "slow client disconnected" && r.Attrs["client"] == stuckAddr
	})
	reason, _ := r.Attrs["reason"].(string)
	if !strings.Contains(reason, "stayed full for 200ms") {
		t.Fatalf("disconnected for %q", reason)
	}
	// It was disconnected by the timeout: after its buffer had been full
	// that long (and well before the default timeout).
	if d, _ := r.Attrs["full_for"].(time.Duration); d < timeout || d >= DefaultSlowTimeout {
		t.Fatalf("disconnected after its buffer had been full for %v, want at least %v", r.Attrs["full_for"], timeout)
	}
	// The upstream waited: what was queued for it is its buffer and at
	// most the few reads of the upstream already under way, not what the
	// upstream could have sent in the meantime.
	if q, _ := r.Attrs["queued"].(int64); q <= bufLen/2 || q > bufLen+(384<<10) {
		t.Fatalf("%d bytes queued for the stuck client when it was disconnected (buffer %d)", q, bufLen)
	}
	rec.Wait(t, shareLimit, "the stuck client left", func(r testkit.Record) bool {
		reason, _ := r.Attrs["reason"].(string)
		return r.Msg == "client left" && r.Attrs["client"] == stuckAddr && strings.Contains(reason, "stayed full")
	})
	want := <-sent
	checkReads(t, reads, size, want)
	// The stuck client got the start of the stream, intact, then its end.
	stuck.SetReadDeadline(time.Now().Add(shareLimit))
	got, err := io.ReadAll(stuck)
	if err != nil && !testkit.IsClosed(err) {
		t.Fatalf("the stuck client was not closed: %v", err)
	}
	if len(got) >= size || !bytes.Equal(got, streamPrefix(2, len(got))) {
		t.Fatalf("the stuck client received %d bytes, not a start of the stream", len(got))
	}
	st := s.Stats()
	if len(st.Clients) != 2 || st.SlowDisconnects != 1 || st.Dropped != 0 || st.UpstreamPaused {
		t.Fatalf("stats after the disconnect: %+v", st)
	}
}

// streamPrefix is the first n bytes testkit.Stream writes with seed.
func streamPrefix(seed uint64, n int) []byte {
	var b bytes.Buffer
	if _, err := testkit.Stream(&b, seed, n); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// TestShareWaitBadConfig: a negative slow timeout, or a policy that is
// none of the three, is refused.
func TestShareWaitBadConfig(t *testing.T) {
	for _, cfg := range []ShareConfig{
		{Listen: "127.0.0.1:0", Upstream: "tcp://127.0.0.1:1", SlowTimeout: -time.Second},
		{Listen: "127.0.0.1:0", Upstream: "tcp://127.0.0.1:1", Slow: SlowDisconnect + 1},
	} {
		if s, err := NewShare(cfg); err == nil {
			s.Close()
			t.Errorf("NewShare(%+v) did not fail", cfg)
		}
	}
	for in, want := range map[string]SlowPolicy{"wait": SlowWait, "drop": SlowDrop, "disconnect": SlowDisconnect} {
		if p, err := ParseSlowPolicy(in); err != nil || p != want || p.String() != in {
			t.Errorf("ParseSlowPolicy(%q) = %v, %v", in, p, err)
		}
	}
	if _, err := ParseSlowPolicy("fast"); err == nil || !strings.Contains(err.Error(), "wait, drop or disconnect") {
		t.Errorf("ParseSlowPolicy(fast): %v", err)
	}
	var zero ShareConfig
	if zero.Slow != SlowWait {
		t.Errorf("the zero policy is %v", zero.Slow)
	}
}
