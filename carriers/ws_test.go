package carriers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/sockmux/sockmux/internal/testkit"
)

// wsPair listens on addr (ws:// or wss://, port 0), dials it and returns
// the dialled and the accepted end.
func wsPair(t testing.TB, addr string, listenOpts, dialOpts []Option) (net.Listener, net.Conn, net.Conn) {
	t.Helper()
	ln := listen(t, addr, listenOpts...)
	c, s := dialPair(t, ln, mustDialer(t, wsAddr(addr, ln), dialOpts...))
	return ln, c, s
}

// wsAddr is addr with the listener's port.
func wsAddr(addr string, ln net.Listener) string {
	scheme, rest, _ := strings.Cut(addr, "://")
	_, path, _ := strings.Cut(rest, "/")
	return scheme + "://" + ln.Addr().String() + "/" + path
}

// wsKinds are the two WebSocket carriers' listen and dial options.
func wsKinds(t testing.TB) []struct {
	name, addr   string
	listen, dial []Option
} {
	cfg := TLSConfig{StateDir: t.TempDir()}
	fp, err := cfg.ServerFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	return []struct {
		name, addr   string
		listen, dial []Option
	}{
		{"ws", "ws://127.0.0.1:0/link", []Option{WithLogger(nil)}, nil},
		{"wss", "wss://127.0.0.1:0/tunnel/x", []Option{WithTLS(cfg), WithLogger(nil)}, []Option{WithTLS(TLSConfig{Fingerprint: fp})}},
	}
}

// TestWSConn: the two ends of a WebSocket carrier are a net.Conn pair,
// deadlines and all.
func TestWSConn(t *testing.T) {
	for _, k := range wsKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			nettest.TestConn(t, listenerPipe(t, k.addr, func(ln net.Listener) string { return wsAddr(k.addr, ln) }, k.listen, k.dial))
		})
	}
}

// TestWSTransfer: a checksummed 32 MiB both ways at once, in writes of
// every size, arrives whole; the addresses are the TCP connection's; a
// Close after the last write delivers it all, then EOF.
func TestWSTransfer(t *testing.T) {
	for _, k := range wsKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			ln, c, s := wsPair(t, k.addr, k.listen, k.dial)
			if c.RemoteAddr().String() != ln.Addr().String() || s.LocalAddr().String() != ln.Addr().String() ||
				c.LocalAddr().String() != s.RemoteAddr().String() {
				t.Fatalf("addresses: dialled %v→%v, accepted %v←%v, listener %v", c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr(), ln.Addr())
			}
			const size = 32 << 20
			var wg sync.WaitGroup
			for i, p := range [][2]net.Conn{{c, s}, {s, c}} {
				wg.Add(2)
				want := make(chan [32]byte, 1)
				go func() {
					defer wg.Done()
					h := sha256.New()
					buf := make([]byte, 300<<10)
					n, step := 0, 1
					for n < size {
						k := min(step, size-n)
						fill(buf[:k], n)
						h.Write(buf[:k])
						if _, err := p[0].Write(buf[:k]); err != nil {
							t.Errorf("write %d: %v", i, err)
							return
						}
						n += k
						step = step*3 + 1
						if step > len(buf) {
							step = 1
						}
					}
					var sum [32]byte
					copy(sum[:], h.Sum(nil))
					want <- sum
				}()
				go func() {
					defer wg.Done()
					h := sha256.New()
					if n, err := io.CopyN(h, p[1], size); err != nil {
						t.Errorf("read %d: %d bytes, %v", i, n, err)
						return
					}
					if got := <-want; !bytes.Equal(got[:], h.Sum(nil)) {
						t.Errorf("direction %d: checksum differs", i)
					}
				}()
			}
			wg.Wait()
			// What is written just before Close arrives, then EOF.
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

func fill(b []byte, off int) {
	for i := range b {
		b[i] = byte((off + i) * 7 >> 3)
	}
}

// TestWSNotFound: anything on the listener's port but a WebSocket upgrade
// on its path gets a plain 404 (a request that is not HTTP a 400), and
// the listener goes on serving carriers; a dialler of the wrong path says
// what the server answered.
func TestWSNotFound(t *testing.T) {
	rec := newRecorder(64)
	ln := listen(t, "ws://127.0.0.1:0/secret", WithLogger(rec.logger()))
	base := "http://" + ln.Addr().String()
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-WebSocket-Version": {"13"}, "Sec-WebSocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	cases := []struct {
		name, method, path string
		header             http.Header
	}{
		{"root", "GET", "/", nil},
		{"path without an upgrade", "GET", "/secret", nil},
		{"upgrade on another path", "GET", "/other", upgrade},
		{"upgrade on a longer path", "GET", "/secret/x", upgrade},
		{"POST on the path", "POST", "/secret", upgrade},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(""))
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
				string(body) != "404 page not found\n" {
				t.Fatalf("%s %s: %s %q %q; want a plain 404", tc.method, tc.path, resp.Status, resp.Header.Get("Content-Type"), body)
			}
		})
	}
	t.Run("not HTTP", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("\x16\x03\x01 hello, this is no HTTP\r\n\r\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 400 ") {
			t.Fatalf("answered %q, want a 400", line)
		}
	})
	r := waitRecord(t, rec, "websocket upgrade failed")
	if r.Level != slog.LevelWarn || !strings.Contains(attr(r, "err"), "not a WebSocket upgrade on /secret") {
		t.Fatalf("logged %v %q err=%q", r.Level, r.Message, attr(r, "err"))
	}
	// The right path still works.
	c, s := dialPair(t, ln, mustDialer(t, "ws://"+ln.Addr().String()+"/secret"))
	roundTrip(t, c, s, "after the 404s")
	// The wrong one says so, and is not worth retrying.
	_, err := mustDialer(t, "ws://"+ln.Addr().String()+"/wrong").Dial(context.Background())
	if !errors.Is(err, ErrNotWebSocket) || !strings.Contains(err.Error(), `"HTTP/1.1 404 Not Found"`) {
		t.Fatalf("dialling the wrong path: %v; want ErrNotWebSocket with the status line", err)
	}
}

// TestWSAddresses: ws:// and wss:// parse with a path ("/" without one),
// wss:// dials with the tls:// flags or the system's roots.
func TestWSAddresses(t *testing.T) {
	for addr, want := range map[string]string{
		"ws://127.0.0.1:80":           "ws://127.0.0.1:80/",
		"ws://127.0.0.1:80/":          "ws://127.0.0.1:80/",
		"ws://[::1]:80/a/b":           "ws://[::1]:80/a/b",
		"wss://example.com:443/t%20x": "wss://example.com:443/t%20x",
	} {
		d, err := NewDialer(addr)
		if err != nil || d.String() != want {
			t.Errorf("NewDialer(%q): %v, %v; want %s", addr, d, err, want)
		}
	}
	for addr, want := range map[string]string{"ws://example.com/x": "ws://example.com:80/x", "wss://[::1]": "wss://[::1]:443/"} {
		if d, err := NewDialer(addr); err != nil || d.String() != want {
			t.Errorf("NewDialer(%q): %v, %v; want the default port, %s", addr, d, err, want)
		}
	}
	for _, addr := range []string{"ws://127.0.0.1:/x", "ws:///x", "ws://127.0.0.1:80/x?q=1", "ws://u:p@127.0.0.1:80/", "ws://127.0.0.1:80/#f", "ws://:80%zz/"} {
		if _, err := NewDialer(addr); !errors.Is(err, ErrBadAddress) {
			t.Errorf("NewDialer(%q): %v, want ErrBadAddress", addr, err)
		}
	}
	if _, err := NewDialer("wss://127.0.0.1:443/", WithTLS(TLSConfig{Fingerprint: "nope"})); !errors.Is(err, ErrTLSConfig) {
		t.Errorf("a bad fingerprint: %v, want ErrTLSConfig", err)
	}
}

// TestWSSVerification: a wss:// dialler verifies the server as a tls://
// one does: a wrong pin or an unknown CA fails the dial with its sentinel,
// and without either flag the system's roots (which do not know a test
// CA) are used; a client certificate the listener requires shows in the
// accepted carrier's TLS state.
func TestWSSVerification(t *testing.T) {
	ca := newTestCA(t, "good")
	serverCert, serverKey := ca.issue(t, "server")
	clientCert, clientKey := ca.issue(t, "client")
	mutual := TLSConfig{CertFile: serverCert, KeyFile: serverKey, ClientCAFile: ca.CAFile}
	ln := listen(t, "wss://127.0.0.1:0/", WithTLS(mutual), WithLogger(nil))
	addr := "wss://" + ln.Addr().String() + "/"
	for _, tc := range []struct {
		name string
		dial TLSConfig
		want error
	}{
		{"wrong pin", TLSConfig{Fingerprint: strings.Repeat("ab", 32), CertFile: clientCert, KeyFile: clientKey}, ErrFingerprint},
		{"system roots", TLSConfig{CertFile: clientCert, KeyFile: clientKey}, ErrUnknownCA},
	} {
		_, err := mustDialer(t, addr, WithTLS(tc.dial)).Dial(context.Background())
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	c, s := dialPair(t, ln, mustDialer(t, addr, WithTLS(TLSConfig{CAFile: ca.CAFile, CertFile: clientCert, KeyFile: clientKey})))
	roundTrip(t, c, s, "mutual")
	for name, conn := range map[string]net.Conn{"dialled": c, "accepted": s} {
		cs := conn.(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
		if len(cs.PeerCertificates) == 0 {
			t.Errorf("the %s carrier has no verified peer certificate", name)
		}
	}
}

// TestWSSilentFlood: silent connections on a ws:// listener are evicted
// for a real peer's upgrade, as on a tls:// one; a slow request is cut at
// the handshake timeout.
func TestWSSilentFlood(t *testing.T) {
	ln := listen(t, "ws://127.0.0.1:0/", WithLogger(nil))
	var silent []net.Conn
	for range 300 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		silent = append(silent, c)
	}
	deadline := time.Now().Add(20 * time.Second)
	waitServerClosed(t, silent[0], deadline, "the oldest silent connection")
	c, s := dialPair(t, ln, mustDialer(t, "ws://"+ln.Addr().String()+"/"))
	roundTrip(t, c, s, "past 300 silent connections")
	if st := ln.(*upgradeListener).gate.Stats(); st.Evicted == 0 {
		t.Fatalf("gate %+v: nothing evicted", st)
	}
}

// TestWSClosedListener: closing the listener ends the upgrades pending,
// not the carriers accepted.
func TestWSClosedListener(t *testing.T) {
	ln, c, s := wsPair(t, "ws://127.0.0.1:0/", []Option{WithLogger(nil)}, nil)
	pending, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Close()
	fmt.Fprintf(pending, "GET / HTTP/1.1\r\nHost: x\r\n") // never finished
	ln.Close()
	// Closed: at once, so with what it sent unread, which may reset it.
	_ = pending.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(pending); err != nil && !testkit.IsReset(err) {
		t.Fatalf("the pending upgrade: %v", err)
	}
	roundTrip(t, c, s, "after the listener closed")
}

// TestWSWriteBuffers: buffers of odd sizes written in one call arrive as
// their concatenation, from either end (a client's frames are masked
// across the buffers' seams).
func TestWSWriteBuffers(t *testing.T) {
	_, c, s := wsPair(t, "ws://127.0.0.1:0/", []Option{WithLogger(nil)}, nil)
	for _, p := range [][2]net.Conn{{c, s}, {s, c}} {
		var bufs [][]byte
		var want []byte
		for i, n := range []int{0, 1, 3, 7, 64, 65, 200_000, 5, 0, 131_072, 9} {
			b := make([]byte, n)
			fill(b, i*1000)
			bufs = append(bufs, b)
			want = append(want, b...)
		}
		done := make(chan error, 1)
		go func() {
			n, err := p[0].(interface{ WriteBuffers([][]byte) (int, error) }).WriteBuffers(bufs)
			if err == nil && n != len(want) {
				err = fmt.Errorf("wrote %d of %d", n, len(want))
			}
			done <- err
		}()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(p[1], got); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("the buffers arrived changed")
		}
	}
}

// TestWSHost: the upgrade's Host is host:port, or the host alone on the
// scheme's default port.
func TestWSHost(t *testing.T) {
	for addr, want := range map[string]string{
		"ws://example.com/x":       "example.com",
		"ws://example.com:80/x":    "example.com",
		"ws://example.com:8080/x":  "example.com:8080",
		"wss://example.com/x":      "example.com",
		"wss://example.com:80/x":   "example.com:80",
		"wss://[2001:db8::1]:443/": "[2001:db8::1]",
		"ws://[2001:db8::1]:9000/": "[2001:db8::1]:9000",
	} {
		d := mustDialer(t, addr).(*wsDialer)
		if got := d.hostHeader(); got != want {
			t.Errorf("%s: Host %q, want %q", addr, got, want)
		}
	}
}

// TestWSScheme: wss:// runs TLS and takes the TLS flags; ws:// does not.
func TestWSScheme(t *testing.T) {
	for addr, want := range map[string]bool{"wss://h:1/": true, "tls://h:1": true, "ws://h:1/": false, "h:1": false, "nocolon": false} {
		if got := UsesTLS(addr); got != want {
			t.Errorf("UsesTLS(%q) = %v, want %v", addr, got, want)
		}
	}
	if s, err := Scheme("ws://h/x"); s != "ws" || err != nil {
		t.Errorf("Scheme(ws://h/x) = %q, %v", s, err)
	}
}

// TestWSCutMidMessage: a peer's connection that ends part-way through a
// binary message's payload gives the reader at most the bytes the peer
// meant, never the message's bytes as they were on the wire. A client's
// frames are masked, and the library returns the bytes of a payload read
// that failed before unmasking them: taken as data, they once completed a
// frame in progress with garbage (a link resumed over ws:// delivered
// corrupt stream bytes and read its next header out of step). Both ends
// are tried, against a peer written by hand that sends a frame's header
// and cut bytes of its payload, then closes.
func TestWSCutMidMessage(t *testing.T) {
	const size = 1000
	plain := make([]byte, size)
	fill(plain, 0)
	key := [4]byte{0x5a, 0xa5, 0x3c, 0xc3} // no zero byte: every masked byte differs
	for _, cut := range []int{1, 500, size - 1} {
		for _, end := range []string{"accepted", "dialled"} {
			t.Run(fmt.Sprintf("%s/%d", end, cut), func(t *testing.T) {
				var c net.Conn
				if end == "accepted" {
					c = wsCutByClient(t, plain[:cut], size, key)
				} else {
					c = wsCutByServer(t, plain[:cut], size)
				}
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // hang guard
				got, err := io.ReadAll(c)
				if !bytes.HasPrefix(plain[:cut], got) {
					t.Fatalf("read %d bytes that are not what the peer sent (first %x, want %x)", len(got), got[:min(8, len(got))], plain[:min(8, len(got))])
				}
				if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read %d bytes and %v: a message cut short must end the carrier with an error", len(got), err)
				}
			})
		}
	}
}

// wsCutByClient returns the accepted end of a ws:// carrier whose client,
// written by hand, upgrades, sends the header of a masked binary frame of
// size bytes and then only part, and closes.
func wsCutByClient(t testing.TB, part []byte, size int, key [4]byte) net.Conn {
	t.Helper()
	ln := listen(t, "ws://127.0.0.1:0/link", WithLogger(nil))
	ach := acceptAsync(t, ln)
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET /link HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", wsTestKey)
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil) // the server sends nothing after its 101
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	frame := append(wsTestHeader(size, true), key[:]...)
	for i, b := range part {
		frame = append(frame, b^key[i%4])
	}
	if _, err := raw.Write(frame); err != nil {
		t.Fatal(err)
	}
	a := <-ach
	if a.err != nil {
		t.Fatalf("Accept: %v", a.err)
	}
	t.Cleanup(func() { a.c.Close() })
	return a.c
}

// wsCutByServer returns the dialled end of a ws:// carrier whose server,
// written by hand, answers the upgrade, sends the header of a binary frame
// of size bytes and then only part, and closes.
func wsCutByServer(t testing.TB, part []byte, size int) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	served := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer raw.Close()
		req, err := http.ReadRequest(bufio.NewReader(raw))
		if err != nil {
			served <- err
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(raw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
		_, err = raw.Write(append(wsTestHeader(size, false), part...))
		served <- err
	}()
	c, err := mustDialer(t, "ws://"+ln.Addr().String()+"/link").Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := <-served; err != nil {
		t.Fatalf("the server: %v", err)
	}
	return c
}

// wsTestKey is RFC 6455's sample Sec-WebSocket-Key.
const wsTestKey = "dGhlIHNhbXBsZSBub25jZQ=="

// wsTestHeader is the header of a final binary frame of size bytes
// (126..65535), with the mask bit set when masked (the key follows).
func wsTestHeader(size int, masked bool) []byte {
	h := []byte{0x82, 126, byte(size >> 8), byte(size)}
	if masked {
		h[1] |= 0x80
	}
	return h
}
