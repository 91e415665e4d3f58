package engine

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("a key both sides hold, long enough")

// TestHandshakeChannel: a keyed handshake leaves both sides with a
// channel, each side's sealer paired with the other's opener, and the
// AUTH frames carry no byte of the key.
func TestHandshakeChannel(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := newSide(HandshakeConfig{Hello: testHello(RoleDialer), Key: testKey, MaxSkew: time.Minute}, now)
	a := newSide(HandshakeConfig{Hello: testHello(RoleAccepter), Key: testKey, MaxSkew: time.Minute}, now)
	if n := pump(t, d, a, now); n != 4 {
		t.Fatalf("%d frames crossed, want HELLO, HELLO, AUTH, AUTH", n)
	}
	dr, derr := d.hs.Result()
	ar, aerr := a.hs.Result()
	if derr != nil || aerr != nil || !dr.Authed || !ar.Authed || dr.Sealer == nil || ar.Opener == nil {
		t.Fatalf("dialer %v %+v, accepter %v %+v", derr, dr, aerr, ar)
	}
	for _, p := range []struct {
		name string
		s    *RecordSealer
		o    *RecordOpener
	}{{"dialer to accepter", dr.Sealer, ar.Opener}, {"accepter to dialer", ar.Sealer, dr.Opener}} {
		wire, _ := p.s.Seal(nil, []byte("hello through the channel"))
		if bytes.Contains(wire, []byte("channel")) {
			t.Fatalf("%s: the record holds its plaintext", p.name)
		}
		got, _, err := p.o.Decode(nil, wire, -1)
		if err != nil || string(got) != "hello through the channel" {
			t.Fatalf("%s: %q, %v", p.name, got, err)
		}
	}
	// A side's own opener does not open what it sealed: the directions
	// have different keys, so a record reflected back is refused.
	wire, _ := dr.Sealer.Seal(nil, []byte("reflected"))
	if _, _, err := dr.Opener.Decode(nil, wire, -1); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("a reflected record opened: %v", err)
	}
}

// TestHandshakeTamperedHello: a HELLO altered on the way (here a
// capability taken out, as a downgrade would) makes the Noise handshake
// fail: the accepter refuses with CodeAuth, the dialer reports the
// refusal, and neither has a channel.
func TestHandshakeTamperedHello(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	dh := testHello(RoleDialer)
	dh.Capabilities |= CapUnbind
	d := newSide(HandshakeConfig{Hello: dh, Key: testKey, MaxSkew: time.Minute}, now)
	ah := testHello(RoleAccepter)
	ah.Capabilities |= CapUnbind
	a := newSide(HandshakeConfig{Hello: ah, Key: testKey, MaxSkew: time.Minute}, now)

	// The dialer's HELLO reaches the accepter without CapUnbind.
	out := d.hs.Output()
	r := NewReader(bytes.NewReader(out[0]), 1<<16)
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHello(f.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	f.Release()
	h.Capabilities &^= CapUnbind
	a.in.Write(AppendFrame(nil, NewHello(h), 1))
	pump(t, d, a, now)
	_, aerr := a.hs.Result()
	_, derr := d.hs.Result()
	if !errors.Is(aerr, ErrKeyMismatch) || !strings.Contains(aerr.Error(), "altered") {
		t.Fatalf("accepter: %v, want ErrKeyMismatch naming an altered HELLO", aerr)
	}
	if !errors.Is(derr, ErrPeerRefused) || !errors.Is(derr, ErrAuth) {
		t.Fatalf("dialer: %v, want the peer's refusal, ErrAuth", derr)
	}
	if s, o := a.hs.Channel(); s != nil || o != nil {
		t.Fatal("the accepter has a channel after a failed handshake")
	}
}

// TestHandshakeKeyedJoin: the answer to a keyed join comes sealed, after
// the channel is up, and a refusal of ours then goes out sealed too.
func TestHandshakeKeyedJoin(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name   string
		answer *Frame
		want   error
	}{
		{"ack", NewAck(Ack{Received: 42}), nil},
		{"data instead", newFrame(TypeData, 1, []byte("x")), ErrStreamState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newSide(HandshakeConfig{Hello: testHello(RoleDialer), Key: testKey, MaxSkew: time.Minute,
				Link: &LinkHello{ID: LinkID{7}, Join: true, Received: 5, Reorder: 1 << 20}}, now)
			a := newSide(HandshakeConfig{Hello: testHello(RoleAccepter), Key: testKey, MaxSkew: time.Minute,
				Link: &LinkHello{ID: LinkID{7}, Reorder: 1 << 20}}, now)
			pump(t, d, a, now)
			ds, do := d.hs.Channel()
			ar, _ := a.hs.Result()
			if d.hs.Done() || ds == nil || ar.Sealer == nil {
				t.Fatalf("dialer done %v, channel %v; accepter channel %v", d.hs.Done(), ds != nil, ar.Sealer != nil)
			}
			// The accepter seals its answer; the dialer opens and reads it.
			wire, _ := ar.Sealer.Seal(nil, AppendFrame(nil, tc.answer, 1))
			tc.answer.Release()
			plain, _, err := do.Decode(nil, wire, -1)
			if err != nil {
				t.Fatal(err)
			}
			rd := NewReader(bytes.NewReader(plain), 1<<16)
			rd.Version, rd.MaxPayload, rd.Seq = d.hs.ReaderSettings()
			f, err := rd.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			d.hs.Input(f, now)
			f.Release()
			res, err := d.hs.Result()
			if !d.hs.Done() || !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("done %v, %v; want %v", d.hs.Done(), err, tc.want)
			}
			if tc.want == nil {
				if res.JoinAck.Received != 42 {
					t.Fatalf("join ACK %+v", res.JoinAck)
				}
				return
			}
			out := d.hs.Output() // the GOAWAY of the refusal, sealed
			if len(out) != 1 || bytes.Contains(out[0], []byte("GOAWAY")) {
				t.Fatalf("%d frames out", len(out))
			}
			plain, _, err = ar.Opener.Decode(nil, out[0], -1)
			if err != nil {
				t.Fatalf("the refusal does not open: %v", err)
			}
			rd = NewReader(bytes.NewReader(plain), 1<<16)
			rd.Version = 1
			if g, err := rd.ReadFrame(); err != nil || g.Type != TypeGoAway {
				t.Fatalf("sealed refusal is %v, %v", g, err)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	if err := CheckKey([]byte("fifteen bytes!!")); !errors.Is(err, ErrShortKey) || !strings.Contains(err.Error(), "head -c 32 /dev/urandom | base64") {
		t.Fatalf("a 15-byte key: %v", err)
	}
	if err := CheckKey([]byte("sixteen bytes!!!")); err != nil {
		t.Fatalf("a 16-byte key: %v", err)
	}
}
