package carriers

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/flynn/noise"
	"golang.org/x/net/nettest"

	"github.com/sockmux/sockmux/engine"
)

// sealedPair is two sealed conns over a loopback TCP connection, each
// direction with its own key, as a keyed carrier has.
func sealedPair(t testing.TB) (c1, c2 net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-accepted
	if a == nil {
		t.Fatal("accept failed")
	}
	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	cs := func(k [32]byte) *noise.CipherState { return noise.UnsafeNewCipherState(engine.NoiseSuite, k, 0) }
	c1 = Sealed(d, nil, engine.NewRecordSealer(cs(k1)), engine.NewRecordOpener(cs(k2)))
	c2 = Sealed(a, nil, engine.NewRecordSealer(cs(k2)), engine.NewRecordOpener(cs(k1)))
	return c1, c2
}

// TestSealedConn: a pair of sealed conns is a net.Conn pair.
func TestSealedConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c1, c2 = sealedPair(t)
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestSealedWriteBuffers: a batch written with WriteBuffers (as the
// carrier writer writes its frames: small headers and payloads, more than
// one write's worth) arrives as its concatenation, after what Write sent
// before it; and what went on the wire is records, not the plaintext.
func TestSealedWriteBuffers(t *testing.T) {
	c1, c2 := sealedPair(t)
	defer c1.Close()
	defer c2.Close()
	var bufs [][]byte
	var want bytes.Buffer
	want.WriteString("first, by Write|")
	for i := range 40 {
		hdr := []byte{byte(i), 0xAB, 0xCD}
		payload := bytes.Repeat([]byte{byte('a' + i%26)}, 1000+i*997)
		bufs = append(bufs, hdr, payload)
		want.Write(hdr)
		want.Write(payload)
	}
	if want.Len() < 2*sealedWriteChunk {
		t.Fatalf("the batch is %d bytes, less than two writes' worth", want.Len())
	}
	done := make(chan error, 1)
	go func() {
		if _, err := c1.Write([]byte("first, by Write|")); err != nil {
			done <- err
			return
		}
		n, err := c1.(interface {
			WriteBuffers([][]byte) (int, error)
		}).WriteBuffers(bufs)
		if err == nil && n != want.Len()-len("first, by Write|") {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c2, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the batch arrived altered")
	}
}

// TestSealNowShortWrites: SealNow's records go out once and in order
// whatever its try takes (all, nothing, a byte, half): what try leaves is
// pending, a SealNow meanwhile retries it and seals nothing new until it
// is out, and the next WriteBuffers (of nothing, as the carrier writer's
// flush) writes it before what it seals itself; the reader opens the
// concatenation of everything, so no record was sealed twice or skipped.
func TestSealNowShortWrites(t *testing.T) {
	for _, tc := range []struct {
		name string
		take func(n int) int // how much of n bytes try writes
	}{
		{"all", func(n int) int { return n }},
		{"nothing", func(int) int { return 0 }},
		{"one byte", func(n int) int { return min(n, 1) }},
		{"half", func(n int) int { return n / 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := sealedPair(t)
			defer c1.Close()
			defer c2.Close()
			sc := c1.(*sealedConn)
			try := func(p []byte) int {
				n, _ := sc.NetConn().Write(p[:tc.take(len(p))])
				return n
			}
			var want bytes.Buffer
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(c2)
				got <- b
			}()
			for i := range 20 {
				bufs := [][]byte{{byte(i), 0xEE}, bytes.Repeat([]byte{byte('a' + i)}, 100+i*5000)}
				sealed, pending, err := sc.SealNow(bufs, try)
				if err != nil {
					t.Fatal(err)
				}
				if total := len(bufs[0]) + len(bufs[1]); sealed != total {
					t.Fatalf("batch %d: sealed %d of %d", i, sealed, total)
				}
				want.Write(bufs[0])
				want.Write(bufs[1])
				if pending != (tc.take(2) < 2) {
					t.Fatalf("batch %d: pending %v with try taking %d of 2", i, pending, tc.take(2))
				}
				if !pending {
					continue
				}
				if again, _, _ := sc.SealNow([][]byte{[]byte("not yet")}, func([]byte) int { return 0 }); again != 0 {
					t.Fatalf("batch %d: sealed %d bytes behind pending records", i, again)
				}
				if i%2 == 0 { // the writer's flush, then a batch of its own
					if _, err := sc.WriteBuffers(nil); err != nil {
						t.Fatal(err)
					}
					continue
				}
				tail := []byte(fmt.Sprintf("|tail %d|", i))
				if n, err := sc.WriteBuffers([][]byte{tail}); err != nil || n != len(tail) {
					t.Fatalf("WriteBuffers after pending records: %d, %v", n, err)
				}
				want.Write(tail)
			}
			if _, err := sc.WriteBuffers(nil); err != nil {
				t.Fatal(err)
			}
			c1.Close()
			if b := <-got; !bytes.Equal(b, want.Bytes()) {
				t.Fatalf("read %d bytes, want %d, or they differ", len(b), want.Len())
			}
		})
	}
}

// askRecorder is a sealed conn's record source that tells the size of
// every buffer it is given to read into.
type askRecorder struct {
	r     io.Reader
	asked chan int
}

func (a *askRecorder) Read(p []byte) (int, error) {
	a.asked <- len(p)
	return a.r.Read(p)
}

// TestSealedQuietHoldsNoBuffer: a sealed conn reads a bulk transfer into
// a large buffer and seals it into one, but once the carrier is quiet
// again it has given its large buffers back: the writer at its first small
// write, the reader once a short read came and was returned (it then
// waits with its small array).
func TestSealedQuietHoldsNoBuffer(t *testing.T) {
	c1, c2 := sealedPair(t)
	defer c1.Close()
	defer c2.Close()
	sc1, sc2 := c1.(*sealedConn), c2.(*sealedConn)
	rec := &askRecorder{r: sc2.NetConn(), asked: make(chan int, 4096)}
	sc2.SetSource(rec)
	bulk := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	wrote := make(chan error, 1)
	go func() {
		_, err := c1.Write(bulk)
		wrote <- err
	}()
	got := make([]byte, len(bulk))
	if _, err := io.ReadFull(c2, got); err != nil || !bytes.Equal(got, bulk) {
		t.Fatalf("bulk: %v, or the bytes differ", err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	large := 0
	for len(rec.asked) > 0 {
		large = max(large, <-rec.asked)
	}
	if large < sealedReadBuffer {
		t.Errorf("the bulk was read into at most %d bytes at once, want the large buffer's %d", large, sealedReadBuffer)
	}
	if _, err := c1.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if c := cap(sc1.wbuf); c > sealedSmallWrite {
		t.Errorf("the writer keeps a %d-byte records buffer after a small write", c)
	}
	small := make([]byte, 4)
	if _, err := io.ReadFull(c2, small); err != nil || string(small) != "ping" {
		t.Fatalf("after the bulk: %q, %v", small, err)
	}
	for len(rec.asked) > 0 {
		<-rec.asked
	}
	ended := make(chan error, 1)
	go func() {
		_, err := c2.Read(small)
		ended <- err
	}()
	if n := <-rec.asked; n != sealedSmallRead {
		t.Errorf("the read waiting on a quiet carrier was given %d bytes, want the small array's %d", n, sealedSmallRead)
	}
	c1.Close()
	if err := <-ended; err == nil {
		t.Error("a read after the peer closed returned no error")
	}
}
