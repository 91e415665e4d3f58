package carriers

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/net/nettest"

	"github.com/sockmux/sockmux/internal/testkit"
)

// quicKind is one way of running a QUIC carrier: the listener's and the
// dialler's options.
type quicKind struct {
	name         string
	listen, dial []Option
}

// quicKinds are a listener with a generated certificate pinned by the
// dialler, and one with a CA's certificate that requires a client
// certificate.
func quicKinds(t testing.TB) []quicKind {
	cfg := TLSConfig{StateDir: t.TempDir()}
	fp, err := cfg.ServerFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	pki := testkit.NewPKI(t)
	return []quicKind{
		{"fingerprint", []Option{WithTLS(cfg), WithLogger(nil)}, []Option{WithTLS(TLSConfig{Fingerprint: fp})}},
		{"client-certificate",
			[]Option{WithTLS(TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA}), WithLogger(nil)},
			[]Option{WithTLS(TLSConfig{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey})}},
	}
}

// quicPair listens with k, dials and returns the listener and both ends.
func quicPair(t testing.TB, k quicKind) (net.Listener, net.Conn, net.Conn) {
	t.Helper()
	ln := listen(t, "quic://127.0.0.1:0", k.listen...)
	c, s := dialPair(t, ln, mustDialer(t, "quic://"+ln.Addr().String(), k.dial...))
	return ln, c, s
}

// TestQUICConn: the two ends of a QUIC carrier are a net.Conn pair,
// deadlines and all.
func TestQUICConn(t *testing.T) {
	for _, k := range quicKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			nettest.TestConn(t, listenerPipe(t, "quic://127.0.0.1:0", func(ln net.Listener) string { return "quic://" + ln.Addr().String() }, k.listen, k.dial))
		})
	}
}

// TestQUICTransfer: 32 MiB both ways at once arrive whole; the addresses
// are the UDP sockets'; the TLS state shows the verified peer; a Close
// right after the last Write delivers it, then EOF.
func TestQUICTransfer(t *testing.T) {
	for _, k := range quicKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			ln, c, s := quicPair(t, k)
			if c.RemoteAddr().String() != ln.Addr().String() || s.LocalAddr().String() != ln.Addr().String() {
				t.Fatalf("addresses: dialled →%v, accepted %v, listener %v", c.RemoteAddr(), s.LocalAddr(), ln.Addr())
			}
			if _, port, _ := net.SplitHostPort(c.LocalAddr().String()); !strings.HasSuffix(s.RemoteAddr().String(), ":"+port) {
				t.Fatalf("the accepted end's peer %v is not the dialled end's socket %v", s.RemoteAddr(), c.LocalAddr())
			}
			cs := c.(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
			if !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
				t.Fatalf("dialled end's TLS state: complete %v, %d peer certificates", cs.HandshakeComplete, len(cs.PeerCertificates))
			}
			var wg sync.WaitGroup
			for i, p := range [][2]net.Conn{{c, s}, {s, c}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := checkedCopy(p[0], p[1], uint64(i), 32<<20); err != nil {
						t.Errorf("direction %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			go func() {
				c.Write([]byte("last words"))
				c.Close()
			}()
			got, err := io.ReadAll(s)
			if err != nil || string(got) != "last words" {
				t.Fatalf("after the peer's Close: %q, %v; want the last words and EOF", got, err)
			}
		})
	}
}

// checkedCopy writes size seeded bytes on w and reads as many on r, and
// says whether they came through intact.
func checkedCopy(w, r net.Conn, seed uint64, size int) error {
	want := make(chan [32]byte, 1)
	errc := make(chan error, 1)
	go func() {
		sum, err := testkit.Stream(w, seed, size)
		errc <- err
		want <- sum
	}()
	h := sha256.New()
	if _, err := io.CopyN(h, r, int64(size)); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if want := <-want; string(h.Sum(nil)) != string(want[:]) {
		return errors.New("the bytes differ")
	}
	return nil
}

// TestQUICHalfClose: CloseWrite ends what the dialled end sends; the
// accepted end reads it and EOF, answers, and closes; the answer arrives
// whole, then EOF. A Write after CloseWrite fails.
func TestQUICHalfClose(t *testing.T) {
	_, c, s := quicPair(t, quicKinds(t)[0])
	req := testkit.Payload(1, 300_000)
	go func() {
		c.Write(req)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != string(req) {
		t.Fatalf("request: %d bytes, %v; want %d and EOF", len(got), err, len(req))
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write after CloseWrite succeeded")
	}
	answer := testkit.Payload(2, 2<<20)
	go func() {
		s.Write(answer)
		s.Close()
	}()
	got, err = io.ReadAll(c)
	if err != nil || string(got) != string(answer) {
		t.Fatalf("answer: %d bytes, %v; want %d and EOF", len(got), err, len(answer))
	}
}

// TestQUICCutShort: a carrier whose connection ends without its FIN (the
// peer's QUIC connection closed with an error) is a Read error, never a
// clean EOF, after the bytes that did arrive.
func TestQUICCutShort(t *testing.T) {
	_, c, s := quicPair(t, quicKinds(t)[0])
	roundTrip(t, c, s, "before the cut")
	_ = s.(*quicConn).qc.CloseWithError(7, "cut")
	_, err := io.ReadAll(c)
	var ae *quic.ApplicationError
	if err == nil || !errors.As(err, &ae) || ae.ErrorCode != 7 {
		t.Fatalf("Read after the cut: %v; want the peer's application error 7", err)
	}
}

// TestQUICTLS: the server is verified by pinned fingerprint or by CA, and
// client certificates are required when the listener names a client CA;
// a refused client fails its dial or its first read, and the listener
// warns with the peer's address.
func TestQUICTLS(t *testing.T) {
	fx := newTLSFixtures(t)
	ca, generated, genFP, caServer, mutual := fx.ca, fx.generated, fx.genFP, fx.caServer, fx.mutual
	clientCert, clientKey, strangerCert, strangerKey := fx.clientCert, fx.clientKey, fx.strangerCert, fx.strangerKey
	wrongFP := strings.Repeat("0f", 32)
	cases := []struct {
		name         string
		server, dial TLSConfig
		dialErr      error  // the Dial fails with this
		refused      string // the carrier fails, and the listener warns saying this
	}{
		{name: "pinned", server: generated, dial: TLSConfig{Fingerprint: genFP}},
		{name: "CA", server: caServer, dial: TLSConfig{CAFile: ca.CAFile}},
		{name: "wrong fingerprint", server: generated, dial: TLSConfig{Fingerprint: wrongFP}, dialErr: ErrFingerprint},
		{name: "unknown CA", server: caServer, dial: TLSConfig{CAFile: fx.other.CAFile}, dialErr: ErrUnknownCA},
		{name: "client certificate", server: mutual, dial: TLSConfig{CAFile: ca.CAFile, CertFile: clientCert, KeyFile: clientKey}},
		{name: "no client certificate", server: mutual, dial: TLSConfig{CAFile: ca.CAFile}, refused: "didn't provide a certificate"},
		{name: "client certificate of an unknown CA", server: mutual,
			dial: TLSConfig{CAFile: ca.CAFile, CertFile: strangerCert, KeyFile: strangerKey}, refused: "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(16)
			ln := listen(t, "quic://127.0.0.1:0", WithTLS(tc.server), WithLogger(rec.logger()))
			ach := acceptAsync(t, ln)
			c, err := mustDialer(t, "quic://"+ln.Addr().String(), WithTLS(tc.dial)).Dial(context.Background())
			if err == nil {
				t.Cleanup(func() { c.Close() })
			}
			switch {
			case tc.dialErr != nil:
				if !errors.Is(err, tc.dialErr) {
					t.Fatalf("Dial: %v; want %v", err, tc.dialErr)
				}
			case tc.refused != "":
				if err == nil {
					_, err = c.Read(make([]byte, 1))
				}
				if err == nil {
					t.Fatal("a refused client's carrier works")
				}
				r := waitRecord(t, rec, "quic handshake failed")
				if attr(r, "peer") == "" || !strings.Contains(attr(r, "err"), tc.refused) {
					t.Fatalf("logged peer=%q err=%q; want a peer and %q", attr(r, "peer"), attr(r, "err"), tc.refused)
				}
			default:
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				a := <-ach
				if a.err != nil {
					t.Fatal(a.err)
				}
				t.Cleanup(func() { a.c.Close() })
				roundTrip(t, c, a.c, "over quic")
				return
			}
			ln.Close()
			if a := <-ach; a.err == nil {
				a.c.Close()
				t.Fatal("the listener accepted a failed handshake")
			}
		})
	}
}

// TestQUICPreamble: a QUIC connection that speaks our ALPN but opens its
// stream with something else is refused and logged, and the listener goes
// on serving carriers.
func TestQUICPreamble(t *testing.T) {
	k := quicKinds(t)[0]
	rec := newRecorder(16)
	ln := listen(t, "quic://127.0.0.1:0", append(k.listen, WithLogger(rec.logger()))...)
	d := mustDialer(t, "quic://"+ln.Addr().String(), k.dial...).(*quicDialer)
	qc, err := quic.DialAddr(context.Background(), ln.Addr().String(), d.tls, quicConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	st, err := qc.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	r := waitRecord(t, rec, "quic carrier refused")
	if !strings.Contains(attr(r, "err"), ErrQUICPreamble.Error()) || !strings.Contains(attr(r, "err"), `"GET "`) {
		t.Fatalf("logged err=%q; want it to name the preamble it got", attr(r, "err"))
	}
	<-qc.Context().Done() // the listener closed it
	c, s := dialPair(t, ln, d)
	roundTrip(t, c, s, "still serving")
}

// TestQUICNoProxy: a quic dialler refuses a proxy, which cannot carry UDP.
func TestQUICNoProxy(t *testing.T) {
	p, err := ParseProxy("socks5://127.0.0.1:1080")
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewDialer("quic://127.0.0.1:1", WithProxy(p), WithTLS(TLSConfig{Fingerprint: strings.Repeat("ab", 32)}))
	if !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), "UDP") {
		t.Fatalf("NewDialer with a proxy: %v; want ErrBadAddress saying UDP", err)
	}
}

// TestQUICListenerClose: carriers accepted before the listener closed go
// on over its socket; once they are closed too, the port is free.
func TestQUICListenerClose(t *testing.T) {
	k := quicKinds(t)[0]
	ln, c, s := quicPair(t, k)
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, s, "after the listener closed")
	c.Close()
	s.Close()
	// The carriers close in the background: the port is free once they have.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln2, err := Listen("quic://"+addr, k.listen...)
		if err == nil {
			ln2.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("listening again on %s: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
