package actors

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// Hostile peers (issue "Hardening"): a hand-played peer (internal/wirepeer)
// dials the listening node and misbehaves, and each case says what the
// listener must do about it (GOAWAY with which code, the link closed or
// kept), while a good link beside it, a second node dialling the same
// listener, keeps carrying a checksummed transfer through a -L forward to
// an echo server. Every case starts its own pair, so one that breaks the
// listener does not cascade into the next.

// hostileGuard bounds every wait for the node: a guard against a hang,
// never a measurement.
const hostileGuard = 5 * time.Second

// hostile is one case's world: the listener A with its good link from B,
// and the targets the hostile peer may open streams to.
type hostile struct {
	pair *testPair
	echo string // echoes, and half-closes at the end of its input
	held string // reads and discards, never closes (until the test ends)

	mu       sync.Mutex
	gated    map[string]bool // targets the listener reaches only after openGate
	gate     chan struct{}
	gateOnce sync.Once
}

// newHostile starts the pair; node, when set, adjusts the listener's
// configuration last. The listener's target dials go through a gate: a
// target marked with gateTarget is dialled only once openGate is called,
// so a test can hold a stream in the accepting state (a listening socket
// would not do: the kernel completes a connect before accept).
func newHostile(t *testing.T, key []byte, node func(*hostile, *Config)) *hostile {
	t.Helper()
	h := &hostile{
		echo:  testkit.Echo(t),
		gated: map[string]bool{},
		gate:  make(chan struct{}),
	}
	var d net.Dialer
	h.pair = newTestPair(t, pairConfig{
		BForwards: []forward.Forward{hostileFwd(h.echo)},
		B:         func(c *Config) { c.Key = key },
		A: func(c *Config) {
			c.Key = key
			c.dialTarget = func(ctx context.Context, addr string) (net.Conn, error) {
				h.mu.Lock()
				gated := h.gated[addr]
				h.mu.Unlock()
				if gated {
					select {
					case <-h.gate:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				return d.DialContext(ctx, "tcp", addr)
			}
			if node != nil {
				node(h, c)
			}
		},
	})
	// held keeps its connection open past the stream's FIN, until the
	// test ends: closing it would end the stream both ways and race the
	// frames a case sends after its FIN. Its release runs before the
	// server's own cleanup, which waits for the handler, and both before
	// the pair's leak check.
	release := make(chan struct{})
	h.held = testkit.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c); <-release })
	t.Cleanup(func() { close(release) })
	t.Cleanup(h.openGate)
	return h
}

// hostileFwd is a -L forward from a loopback port to target.
func hostileFwd(target string) forward.Forward {
	return forward.Forward{Bind: "127.0.0.1:0", Target: target}
}

// gateTarget makes the listener's dials of addr wait for openGate.
func (h *hostile) gateTarget(addr string) {
	h.mu.Lock()
	h.gated[addr] = true
	h.mu.Unlock()
}

// openGate lets the gated dials through.
func (h *hostile) openGate() { h.gateOnce.Do(func() { close(h.gate) }) }

// source starts a server that writes n seeded bytes to each connection
// and closes it; with held, it writes only once release is called (at the
// end of the test at the latest). It returns the address, the bytes and
// release.
func source(t testing.TB, n int, held bool) (string, []byte, func()) {
	data := testkit.Payload(uint64(n), n)
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	if !held {
		release()
	}
	addr := testkit.Serve(t, func(c net.Conn) {
		<-gate
		_, _ = c.Write(data)
	})
	t.Cleanup(release) // before the server's own cleanup waits for it
	return addr, data, release
}

// firehose starts a server that writes to each connection until the
// write fails, counting the bytes in sent.
func firehose(t testing.TB, sent *atomic.Int64) string {
	chunk := testkit.Payload(3, 256<<10)
	return testkit.Serve(t, func(c net.Conn) {
		for {
			n, err := c.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
}

// goodTransfer checks the good link: a checksummed echo through B's -L
// forward and A, on a link that was never dropped.
func (h *hostile) goodTransfer(t *testing.T, seed uint64, size int) {
	t.Helper()
	testkit.EchoRoundTrip(t, testkit.Dial(t, h.pair.B.ForwardAddrs()[0]), seed, size)
	if n := h.pair.B.Stats().reconnects.Load(); n != 0 {
		t.Errorf("the good link was dropped and redialled %d times during the attack", n)
	}
}

// How a case's peer begins.
type start int

const (
	handshake start = iota // the HELLO exchange (and AUTH) must succeed
	raw                    // nothing: the attack writes from the first byte
	helloOnly              // the handshake runs, its outcome left to the verdict (the node's GOAWAY)
)

// What the listener must do about the attack.
type verdict int

const (
	stays        verdict = iota // the link stays up: a PING is answered, and no GOAWAY came
	closes                      // GOAWAY with the case's code as the last frame, then the carrier closes
	closesAnyhow                // the carrier closes; a GOAWAY or not (the doc does not say)
)

// hostileCase is one hostile peer and what the listener must do about it.
type hostileCase struct {
	name string
	// node adjusts the listener's configuration.
	node func(*hostile, *Config)
	// key is the listener's pre-shared key, and the good link's.
	key []byte
	// peer is how the peer introduces itself.
	peer  wirepeer.Options
	start start
	// attack is what the peer does (after the handshake, unless raw);
	// it may assert what the node answers on the way.
	attack func(t *testing.T, h *hostile, p *wirepeer.Peer)
	want   verdict
	code   engine.Code // the GOAWAY's code, for closes
}

// runHostile is the body every case shares.
func runHostile(t *testing.T, tc hostileCase) {
	h := newHostile(t, tc.key, tc.node)
	p := wirepeer.Dial(t, h.pair.LinkAddr, tc.peer)
	switch tc.start {
	case handshake:
		if err := p.Handshake(); err != nil {
			t.Fatalf("handshake: %v", err)
		}
	case helloOnly:
		// This side may find nothing wrong (it checks only the node's
		// HELLO): what the node says is the verdict.
		_ = p.Handshake()
	}
	if tc.attack != nil {
		tc.attack(t, h, p)
	}
	judge(t, p, tc.want, tc.code)
	h.goodTransfer(t, 11, 1<<20)
	h.closeListener()
}

// closeListener closes the listener while its links are still up (or long
// gone): a link that goes down while Node.Shutdown asks it to shut down
// (the hostile peer's, closed at the end of the test) may never answer,
// which costs the shutdown its 3 s timeout.
func (h *hostile) closeListener() { h.pair.A.Close() }

// judge checks the listener's verdict on the hostile link.
func judge(t *testing.T, p *wirepeer.Peer, want verdict, code engine.Code) {
	t.Helper()
	switch want {
	case stays:
		if _, err := p.RoundTrip(hostileGuard); err != nil {
			t.Errorf("the link did not stay up: %v", err)
		}
	case closes, closesAnyhow:
		c, err := p.Closed(hostileGuard)
		if err != nil {
			t.Errorf("%v; want the link closed", err)
			return
		}
		if want == closesAnyhow {
			return
		}
		switch {
		case c.GoAway == nil:
			t.Errorf("the link closed (%v) without a GOAWAY; want GOAWAY code %d (%v)", c.Err, code, code)
		case c.GoAway.Code != code:
			t.Errorf("GOAWAY code %d (%v); want code %d (%v)", c.GoAway.Code, *c.GoAway, code, code)
		}
		if c.AfterGoAway > 0 {
			t.Errorf("%d frames came after the GOAWAY (%v); it must be the last", c.AfterGoAway, c.Frames[len(c.Frames)-1])
		}
	}
}

// check fails the test on a write error.
func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// expectOn reads until stream id's frame of type want and returns it; a
// reason frame must carry code. An OPEN_FAIL or RST that is not what is
// wanted fails at once.
func expectOn(t *testing.T, p *wirepeer.Peer, id uint32, want engine.Type, code engine.Code) *wirepeer.Frame {
	t.Helper()
	f, _, err := p.Expect(hostileGuard, func(f *wirepeer.Frame) bool {
		return f.Stream == id && (f.Type == want || f.Type == engine.TypeOpenFail || f.Type == engine.TypeRst)
	})
	if err != nil {
		t.Fatalf("waiting for %v on stream %d: %v", want, id, err)
	}
	if f.Type != want {
		t.Fatalf("stream %d: got %v, want %v", id, f, want)
	}
	if want == engine.TypeOpenFail || want == engine.TypeRst {
		if r, err := f.Reason(); err != nil || r.Code != code {
			t.Fatalf("stream %d: %v, want code %d (%v)", id, f, code, code)
		}
	}
	return f
}

// echoOn sends msg on stream id and reads the echo back.
func echoOn(t *testing.T, p *wirepeer.Peer, id uint32, msg string) {
	t.Helper()
	check(t, p.Data(id, []byte(msg)))
	data, end, err := p.ReadStream(id, len(msg), hostileGuard)
	if err != nil || string(data) != msg {
		t.Fatalf("stream %d echoed %q (end %v, %v); want %q", id, data, end, err, msg)
	}
}

// helloBytes is a HELLO frame for h.
func helloBytes(h engine.Hello) []byte {
	return wirepeer.AppendFrame(nil, engine.Header{Version: h.MaxVersion, Type: engine.TypeHello}, 0, engine.AppendHello(nil, &h))
}

// goodHello is the HELLO a plain dialer sends.
var goodHello = engine.Hello{MinVersion: 1, MaxVersion: 1, Role: engine.RoleDialer,
	MaxPayload: engine.DefaultMaxPayload, InitialWindow: engine.DefaultWindow}

// writeRaw is an attack that writes b.
func writeRaw(b ...[]byte) func(*testing.T, *hostile, *wirepeer.Peer) {
	return func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
		for _, x := range b {
			check(t, p.Write(x))
		}
	}
}

// sendFrame is an attack that sends one frame of the peer's version.
func sendFrame(typ engine.Type, stream uint32, payload []byte) func(*testing.T, *hostile, *wirepeer.Peer) {
	return func(t *testing.T, _ *hostile, p *wirepeer.Peer) { check(t, p.Send(typ, stream, payload)) }
}

// withHello is a peer whose HELLO adjust changes.
func withHello(adjust func(*engine.Hello)) wirepeer.Options { return wirepeer.Options{Hello: adjust} }

var hostileKey = []byte("hostile test key")

// TestHostileHandshake: what comes before or instead of a good HELLO.
func TestHostileHandshake(t *testing.T) {
	fixedNonce := func(h *engine.Hello) { h.Extensions[engine.ExtNonce] = make([]byte, engine.NonceLen) }
	cases := []hostileCase{
		{name: "garbage instead of HELLO", start: raw, attack: writeRaw([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
			want: closes, code: engine.CodeProtocol},
		{name: "garbage before HELLO", start: raw, attack: writeRaw([]byte{0xde, 0xad, 0xbe, 0xef}, helloBytes(goodHello)),
			want: closes, code: engine.CodeProtocol},
		{name: "HELLO length past 4096", start: raw, attack: writeRaw(wirepeer.Header(1, engine.TypeHello, 0, engine.MaxHelloPayload+1)),
			want: closes, code: engine.CodeProtocol},
		{name: "HELLO length 2^32-1", start: raw, attack: writeRaw(wirepeer.Header(1, engine.TypeHello, 0, 0xFFFFFFFF)),
			want: closes, code: engine.CodeProtocol},
		{name: "HELLO without the magic", start: raw,
			attack: writeRaw(wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: engine.TypeHello}, 0, []byte("XMUX\x01\x01\x01\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x04\x00\x00"))),
			want:   closes, code: engine.CodeProtocol},
		{name: "HELLO of 19 bytes", start: raw,
			attack: writeRaw(wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: engine.TypeHello}, 0, engine.AppendHello(nil, &goodHello)[:19])),
			want:   closes, code: engine.CodeProtocol},
		// PROTOCOL.md §5: "a HELLO frame longer than 4096 bytes or cut
		// short: the side that sees it sends a GOAWAY with code 1".
		{name: "HELLO cut short by the end", start: raw,
			attack: func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
				check(t, p.Write(helloBytes(goodHello)[:20]))
				check(t, p.CloseWrite())
			},
			want: closes, code: engine.CodeProtocol},
		{name: "version 0", start: helloOnly, peer: withHello(func(h *engine.Hello) { h.MinVersion, h.MaxVersion = 0, 0 }),
			want: closes, code: engine.CodeVersion},
		{name: "version 255", start: helloOnly, peer: withHello(func(h *engine.Hello) { h.MinVersion, h.MaxVersion = 255, 255 }),
			want: closes, code: engine.CodeVersion},
		{name: "versions 0..255 agree on 1", peer: withHello(func(h *engine.Hello) { h.MinVersion, h.MaxVersion = 0, 255 }),
			attack: func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
				if p.Version() != 1 {
					t.Errorf("agreed version %d, want 1", p.Version())
				}
			},
			want: stays},
		{name: "empty version range 2..1", start: helloOnly, peer: withHello(func(h *engine.Hello) { h.MinVersion, h.MaxVersion = 2, 1 }),
			want: closes, code: engine.CodeProtocol},
		{name: "same role as the listener", start: helloOnly, peer: withHello(func(h *engine.Hello) { h.Role = engine.RoleAccepter }),
			want: closes, code: engine.CodeProtocol},
		{name: "role 7", start: helloOnly, peer: withHello(func(h *engine.Hello) { h.Role = 7 }),
			want: closes, code: engine.CodeProtocol},
		{name: "initial window of 1 GiB", peer: wirepeer.Options{Window: engine.MaxWindow}, want: stays},
		{name: "initial window past 1 GiB", start: helloOnly, peer: wirepeer.Options{Window: engine.MaxWindow + 1},
			want: closes, code: engine.CodeProtocol},
		{name: "initial window 2^32-1", start: helloOnly, peer: wirepeer.Options{Window: 0xFFFFFFFF},
			want: closes, code: engine.CodeProtocol},
		{name: "initial window 0", start: helloOnly, peer: withHello(func(h *engine.Hello) { h.InitialWindow = 0 }),
			want: closes, code: engine.CodeProtocol},
		{name: "zero max payload", start: helloOnly, peer: withHello(func(h *engine.Hello) { h.MaxPayload = 0 }),
			want: closes, code: engine.CodeProtocol},
		{name: "max payload 1023", start: helloOnly, peer: wirepeer.Options{MaxPayload: 1023},
			want: closes, code: engine.CodeProtocol},
		{name: "max payload 2^32-1", peer: wirepeer.Options{MaxPayload: 0xFFFFFFFF}, want: stays},
		{name: "unknown extension", peer: wirepeer.Options{Extra: append([]byte{200, 0, 100}, make([]byte, 100)...)}, want: stays},
		{name: "repeated extensions, with a key", key: hostileKey,
			// Another nonce and clock after the HELLO's own: the last wins,
			// and the AUTH covers the payload as sent.
			peer: wirepeer.Options{Key: hostileKey, Extra: append(append([]byte{engine.ExtNonce, 0, engine.NonceLen}, make([]byte, engine.NonceLen)...),
				append([]byte{engine.ExtTime, 0, 8}, wirepeer.PingPayload(uint64(time.Now().UnixNano()))...)...)},
			want: stays},
		{name: "extension longer than the HELLO", start: helloOnly, peer: wirepeer.Options{Extra: []byte{9, 0, 50, 1, 2}},
			want: closes, code: engine.CodeProtocol},
		{name: "extension header cut short", start: helloOnly, peer: wirepeer.Options{Extra: []byte{9, 0}},
			want: closes, code: engine.CodeProtocol},
		{name: "CapSeq without link extensions", start: helloOnly, peer: withHello(func(h *engine.Hello) { h.Capabilities |= engine.CapSeq }),
			want: closes, code: engine.CodeProtocol},
		{name: "CapSeq with a reorder limit of 0", start: helloOnly,
			peer: wirepeer.Options{Seq: true, Hello: func(h *engine.Hello) { h.Extensions[engine.ExtReorder] = make([]byte, 4) }},
			want: closes, code: engine.CodeProtocol},
		{name: "CapSeq join of a link that does not exist",
			peer: wirepeer.Options{Seq: true, Hello: func(h *engine.Hello) {
				engine.SetLinkHello(h, engine.LinkHello{ID: engine.LinkID{0xba, 0xd}, Join: true, Reorder: engine.DefaultReorder})
			}},
			want: closes, code: engine.CodeUnknownLink},
		{name: "listener requires a key the peer lacks", key: hostileKey, start: helloOnly, want: closes, code: engine.CodeAuth},
		{name: "peer requires a key the listener lacks", start: helloOnly, peer: wirepeer.Options{Key: hostileKey},
			want: closes, code: engine.CodeAuth},
		{name: "wrong key", key: hostileKey, start: helloOnly, peer: wirepeer.Options{Key: []byte("another key")},
			want: closes, code: engine.CodeAuth},
		{name: "clock an hour off", key: hostileKey, start: helloOnly,
			peer: wirepeer.Options{Key: hostileKey, Hello: func(h *engine.Hello) {
				h.Extensions[engine.ExtTime] = wirepeer.PingPayload(uint64(time.Now().Add(time.Hour).UnixNano()))
			}},
			want: closes, code: engine.CodeAuth},
		{name: "replayed HELLO", key: hostileKey, peer: wirepeer.Options{Key: hostileKey, Hello: fixedNonce},
			attack: func(t *testing.T, h *hostile, _ *wirepeer.Peer) {
				again := wirepeer.Dial(t, h.pair.LinkAddr, wirepeer.Options{Key: hostileKey, Hello: fixedNonce})
				if err := again.Handshake(); err == nil {
					t.Fatal("a HELLO with a nonce already seen was accepted")
				}
				judge(t, again, closes, engine.CodeAuth)
			},
			want: stays},
		{name: "OPEN instead of AUTH", key: hostileKey, peer: wirepeer.Options{Key: hostileKey, HelloOnly: true},
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) { check(t, p.Open(1, h.echo, nil)) },
			want:   closes, code: engine.CodeProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runHostile(t, tc) })
	}
}

// sum is a SHA-256 for comparing transfers in failure messages.
func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b))[:16] }
