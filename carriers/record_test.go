package carriers

import (
	"bytes"
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
