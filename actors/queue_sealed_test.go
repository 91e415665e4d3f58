package actors

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/flynn/noise"
	"golang.org/x/net/nettest"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
)

// sealedTCPPair is a keyed carrier's two ends over loopback TCP, each
// direction with its own key, reading the records with the data path's
// system calls (SetSource, as a link's attach does); under is a's socket.
func sealedTCPPair(t *testing.T) (a, b net.Conn, under net.Conn) {
	t.Helper()
	ra, rb := tcpPair(t)
	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	cs := func(k [32]byte) *noise.CipherState { return noise.UnsafeNewCipherState(engine.NoiseSuite, k, 0) }
	a = carriers.Sealed(ra, nil, engine.NewRecordSealer(cs(k1)), engine.NewRecordOpener(cs(k2)))
	b = carriers.Sealed(rb, nil, engine.NewRecordSealer(cs(k2)), engine.NewRecordOpener(cs(k1)))
	for _, c := range []net.Conn{a, b} {
		sc := c.(sealedCarrier)
		src := newRawSource(sc.NetConn())
		if src == nil {
			t.Fatal("no raw source for a keyed TCP carrier")
		}
		sc.SetSource(src)
	}
	return a, b, ra
}

// TestSealedRawSource: a keyed TCP carrier reading through the data
// path's system calls is a net.Conn pair.
func TestSealedRawSource(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c1, c2, _ = sealedTCPPair(t)
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestFrameQueueSealedShortWrite: on an idle keyed TCP carrier push seals
// the frames and writes them itself; against a small socket buffer no one
// reads, the socket takes part of the records, the rest stays pending and
// the writer is sent to finish it (flush, with what push sealed owed to
// drained); a push meanwhile queues behind it; the writer's one
// WriteBuffers then completes the byte stream: the peer opens every frame
// in order, each sealed once, and the bytes accounted add up.
func TestFrameQueueSealedShortWrite(t *testing.T) {
	before := engine.PoolOutstanding()
	a, b, under := sealedTCPPair(t)
	q := newFrameQueue(a, engine.Version)
	if q.sealed == nil || q.raw == nil {
		t.Fatal("a keyed TCP carrier got no immediate write")
	}
	var w wireLog
	pushIdle(t, q, b, &w)
	_ = under.(*net.TCPConn).SetWriteBuffer(8 << 10)
	w.want = w.want[:0]
	n := q.push(w.add(bulkFrames(64)...))
	if n != 0 || !q.flush || q.owed == 0 {
		t.Fatalf("push against a full socket: wrote %d, flush %v, owed %d", n, q.flush, q.owed)
	}
	if n2 := q.push(w.add(engine.NewCredit(7, 70))); n2 != 0 {
		t.Fatalf("push behind pending records wrote %d bytes", n2)
	}
	rest, off, owed, _, ok := q.take(nil)
	if !ok || owed == 0 || len(rest) == 0 || rest[len(rest)-1].Stream != 7 {
		t.Fatalf("the writer got %d frames, owed %d (ok %v)", len(rest), owed, ok)
	}
	finishAsWriter(t, rest, off, owed, b, w.want, func(bufs net.Buffers) error {
		_, err := a.(buffersWriter).WriteBuffers(bufs)
		return err
	})
	q.written()
	w.want = w.want[:0]
	if n := q.push(w.add(engine.NewCredit(9, 90))); n == 0 {
		t.Fatal("push after the writer's flush did not write at once")
	}
	got := make([]byte, len(w.want))
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, w.want) {
		t.Fatalf("the last frame arrived as %x (%v)", got, err)
	}
	if got := engine.PoolOutstanding(); got != before {
		t.Fatalf("%d buffers outstanding, want %d", got, before)
	}
}
