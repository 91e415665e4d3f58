package actors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

var secureKey = []byte("a pre-shared key of 32 bytes, ok")

// knownPayload is n bytes of a text a relay would recognise.
func knownPayload(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "KNOWN-PAYLOAD-%08d|", i)
	}
	return b.Bytes()[:n]
}

// sink is a target that keeps what it receives.
type sink struct {
	addr string
	mu   sync.Mutex
	got  bytes.Buffer
	done chan struct{}
}

func newSink(t *testing.T) *sink {
	s := &sink{done: make(chan struct{}, 4)}
	s.addr = testkit.Serve(t, func(c net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			s.mu.Lock()
			s.got.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				s.done <- struct{}{}
				return
			}
		}
	})
	return s
}

func (s *sink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.got.Bytes()...)
}

// recorder is a tap that keeps every byte relayed, both ways.
type recorder struct {
	mu  sync.Mutex
	all bytes.Buffer
}

func (r *recorder) tap(_ bool, _ int64, b []byte) {
	r.mu.Lock()
	r.all.Write(b)
	r.mu.Unlock()
}

func (r *recorder) contains(s []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Contains(r.all.Bytes(), s)
}

// TestRelaySeesNoCleartext: a relay in the middle of a keyed tcp link
// (a pre-shared key, identities, or both) sees none of a known payload,
// nor its marker, and the target gets all of it; on an unkeyed link the
// same relay sees it (the check can fail).
func TestRelaySeesNoCleartext(t *testing.T) {
	payload := knownPayload(1 << 20)
	for _, tc := range []struct {
		name  string
		key   []byte
		ids   bool // identities (XX): the listener then shows the dialler's key
		clear bool
	}{
		{"keyed", secureKey, false, false},
		{"unkeyed", nil, false, true},
		{"identities", nil, true, false},
		{"identities and key", secureKey, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := newSink(t)
			pc := pairConfig{BForwards: []forward.Forward{fwd(t, target.addr)}, Proxy: true, Key: tc.key}
			var dk *identity.PrivateKey
			if tc.ids {
				pc.A, pc.B, dk = identityPair(t)
			}
			p := newTestPair(t, pc)
			rec := &recorder{}
			p.Proxy.SetTap(rec.tap)
			c := testkit.Dial(t, p.B.ForwardAddrs()[0])
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			c.CloseWrite()
			select {
			case <-target.done:
			case <-time.After(20 * time.Second):
				t.Fatal("the target did not get the payload's end")
			}
			if got := target.bytes(); !bytes.Equal(got, payload) {
				t.Fatalf("target got %d bytes, want the %d sent", len(got), len(payload))
			}
			if seen := rec.contains([]byte("KNOWN-PAYLOAD-")); seen != tc.clear {
				t.Fatalf("the relay saw the payload's marker: %v, want %v", seen, tc.clear)
			}
			if tc.ids {
				if st := p.A.Status(); len(st.Links) != 1 || st.Links[0].PeerKey != dk.Public.String() {
					t.Fatalf("the listener's link: %+v, want the dialler's key", st.Links)
				}
			}
		})
	}
}

// TestRelayFlipsABit: on a link keyed by a pre-shared key (NNpsk0) and
// on one keyed by identities (XX), a bit flipped by the relay after the
// handshake ends the link with "integrity check failed", logged on both
// sides, and no altered byte reaches the target: what it got is a prefix
// of what was sent.
func TestRelayFlipsABit(t *testing.T) {
	payload := knownPayload(4 << 20)
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T, pc *pairConfig)
	}{
		{"psk", func(_ *testing.T, pc *pairConfig) { pc.Key = secureKey }},
		{"identities", func(t *testing.T, pc *pairConfig) { pc.A, pc.B, _ = identityPair(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := newSink(t)
			pc := pairConfig{BForwards: []forward.Forward{fwd(t, target.addr)}, Proxy: true}
			tc.cfg(t, &pc)
			p := newTestPair(t, pc)
			const at = 300 << 10 // well past the handshake, inside the payload
			var once sync.Once
			p.Proxy.SetTap(func(toTarget bool, off int64, b []byte) {
				if toTarget && off <= at && at < off+int64(len(b)) {
					once.Do(func() { b[at-off] ^= 0x10 })
				}
			})
			c := testkit.Dial(t, p.B.ForwardAddrs()[0])
			go func() { _, _ = c.Write(payload) }()
			integrity := func(r testkit.Record) bool {
				return strings.Contains(fmt.Sprint(r.Attrs), "integrity check failed")
			}
			p.ALog.Wait(t, 20*time.Second, "the accepter to report the bad record", integrity)
			p.BLog.Wait(t, 20*time.Second, "the dialer to be told", integrity)
			select {
			case <-target.done: // the stream ended with the link
			case <-time.After(20 * time.Second):
				t.Fatal("the target's stream did not end")
			}
			got := target.bytes()
			if !bytes.HasPrefix(payload, got) {
				i := 0
				for i < len(got) && got[i] == payload[i] {
					i++
				}
				t.Fatalf("the target got an altered byte at %d of %d", i, len(got))
			}
			if len(got) >= len(payload) {
				t.Fatalf("the target got all %d bytes: the flip went unnoticed", len(got))
			}
		})
	}
}

// TestKeyedStripe: a keyed link over 4 carriers, each of which ran its
// own keyed handshake as it joined, carries streams intact, and the relay
// sees no cleartext on any of them.
func TestKeyedStripe(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}, Proxy: true, Carriers: 4, Key: secureKey})
	rec := &recorder{}
	p.Proxy.SetTap(rec.tap)
	waitCarriers(t, p, 4)
	if err := echoStreams(t, p.B.ForwardAddrs()[0], 4, 4<<20); err != nil {
		t.Fatal(err)
	}
	if n := p.Proxy.Conns(); n != 4 {
		t.Fatalf("%d carriers through the relay, want 4", n)
	}
	l, _ := upLink(p.A)
	for i, b := range l.CarrierBytesIn {
		if b == 0 {
			t.Fatalf("carrier %d carried nothing (%v)", i, l.CarrierBytesIn)
		}
	}
	c := testkit.Dial(t, p.B.ForwardAddrs()[0])
	marker := knownPayload(256 << 10)
	go func() { _, _ = c.Write(marker); c.CloseWrite() }()
	if _, err := io.ReadAll(io.LimitReader(c, int64(len(marker)))); err != nil {
		t.Fatal(err)
	}
	if rec.contains([]byte("KNOWN-PAYLOAD-")) {
		t.Fatal("the relay saw cleartext on a keyed striped link")
	}
}

// TestKeyedResume: the only carrier of a keyed link is cut twice
// mid-transfer; each time the dialer resumes the link with a new keyed
// handshake, and the streams carry on intact.
func TestKeyedResume(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}, Proxy: true, Key: secureKey,
		Backoff: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- echoStreams(t, p.B.ForwardAddrs()[0], 2, 8<<20) }()
	for range 2 {
		moved := p.A.Stats().BytesIn.Load()
		waitFor(t, "bytes to flow", func() bool { return p.A.Stats().BytesIn.Load() > moved+(1<<20) })
		p.Proxy.Cut()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := p.B.Stats().resumes.Load(); r < 1 {
		t.Fatalf("B resumed %d times, want at least 1", r)
	}
	for _, log := range []*testkit.Recorder{p.ALog, p.BLog} {
		for _, r := range log.Records() {
			if r.Msg == "link down" {
				t.Fatalf("the link went down: %v", r.Attrs)
			}
		}
	}
}

// TestShortKeyRefused: a node with a key under 16 bytes is not made, and
// the error says how to make a good one.
func TestShortKeyRefused(t *testing.T) {
	_, err := NewNode(Config{Key: []byte("fifteen bytes!!")})
	if !errors.Is(err, engine.ErrShortKey) || !strings.Contains(err.Error(), "sockmux keygen --psk") {
		t.Fatalf("NewNode with a 15-byte key: %v", err)
	}
}

// TestKeyedCarrierKinds: a keyed link over each carrier kind a Pair runs
// on (tcp, and the unbuffered in-memory pipe, where the accepter's first
// records follow its last AUTH with nothing in between) carries streams
// intact both ways.
func TestKeyedCarrierKinds(t *testing.T) {
	for _, carrier := range pairCarriers {
		t.Run(carrier, func(t *testing.T) {
			echo := testkit.Echo(t)
			p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}, Carrier: carrier, Key: secureKey, Carriers: 2})
			waitCarriers(t, p, 2)
			if err := echoStreams(t, p.B.ForwardAddrs()[0], 3, 2<<20); err != nil {
				t.Fatal(err)
			}
		})
	}
}
