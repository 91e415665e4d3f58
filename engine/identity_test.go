package engine

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flynn/noise"
)

func testStatic(t *testing.T) *noise.DHKey {
	t.Helper()
	k, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k
}

// recordReader reads a side's input through its record opener, once the
// channel is up: what a sealed carrier does.
type recordReader struct {
	src   *bytes.Buffer
	raw   []byte
	o     *RecordOpener
	plain bytes.Buffer
	err   error
}

func (r *recordReader) Read(p []byte) (int, error) {
	r.raw = append(r.raw, r.src.Next(r.src.Len())...)
	if r.plain.Len() == 0 && len(r.raw) > 0 && r.err == nil {
		out, used, err := r.o.Decode(nil, r.raw, -1)
		r.raw = r.raw[used:]
		r.plain.Write(out)
		r.err = err
	}
	if r.plain.Len() > 0 {
		return r.plain.Read(p)
	}
	if r.err != nil {
		return 0, r.err
	}
	return 0, io.EOF
}

type idCase struct {
	dID, aID         *noise.DHKey
	dKey, aKey       []byte
	dVerify, aVerify func([]byte) error
	aRequire         bool
	dRequire         bool
}

func runIdentity(t *testing.T, c idCase) (d, a *hsSide, n int) {
	now := time.Unix(1_800_000_000, 0)
	d = newSide(HandshakeConfig{Hello: testHello(RoleDialer), Key: c.dKey, MaxSkew: time.Minute, Identity: c.dID, VerifyPeer: c.dVerify, RequireIdentity: c.dRequire}, now)
	a = newSide(HandshakeConfig{Hello: testHello(RoleAccepter), Key: c.aKey, MaxSkew: time.Minute, Identity: c.aID, VerifyPeer: c.aVerify, RequireIdentity: c.aRequire}, now)
	n = pumpToEnd(t, d, a, now)
	if !d.hs.Done() || !a.hs.Done() {
		t.Fatalf("handshake stuck: dialer waits for %s, accepter for %s", d.hs.Expecting(), a.hs.Expecting())
	}
	return d, a, n
}

func pinned(want []byte) func([]byte) error {
	return func(got []byte) error {
		if !bytes.Equal(got, want) {
			return fmt.Errorf("key %x is not the one pinned", got[:4])
		}
		return nil
	}
}

// TestIdentityHandshake: two identities that check each other's key end
// with a channel both ways, each side knowing the other's key, in six
// frames (two HELLOs, four AUTHs).
func TestIdentityHandshake(t *testing.T) {
	dk, ak := testStatic(t), testStatic(t)
	d, a, n := runIdentity(t, idCase{dID: dk, aID: ak, dVerify: pinned(ak.Public), aVerify: pinned(dk.Public), aRequire: true, dRequire: true})
	if n != 6 {
		t.Fatalf("%d frames crossed, want 6", n)
	}
	dr, derr := d.hs.Result()
	ar, aerr := a.hs.Result()
	if derr != nil || aerr != nil {
		t.Fatalf("dialer %v, accepter %v", derr, aerr)
	}
	if !dr.Authed || !ar.Authed || !bytes.Equal(dr.PeerKey, ak.Public) || !bytes.Equal(ar.PeerKey, dk.Public) {
		t.Fatalf("authed %v %v, peer keys right %v %v", dr.Authed, ar.Authed, bytes.Equal(dr.PeerKey, ak.Public), bytes.Equal(ar.PeerKey, dk.Public))
	}
	for _, p := range []struct {
		s *RecordSealer
		o *RecordOpener
	}{{dr.Sealer, ar.Opener}, {ar.Sealer, dr.Opener}} {
		wire, _ := p.s.Seal(nil, []byte("secret payload"))
		if bytes.Contains(wire, []byte("secret")) {
			t.Fatal("the record holds its plaintext")
		}
		if got, _, err := p.o.Decode(nil, wire, -1); err != nil || string(got) != "secret payload" {
			t.Fatalf("%q %v", got, err)
		}
	}
}

// TestIdentityUnverifiedAccepter: an accepter with no check admits any
// key, which does not authenticate the dialer there.
func TestIdentityUnverifiedAccepter(t *testing.T) {
	dk, ak := testStatic(t), testStatic(t)
	d, a, _ := runIdentity(t, idCase{dID: dk, aID: ak, dVerify: pinned(ak.Public)})
	dr, derr := d.hs.Result()
	ar, aerr := a.hs.Result()
	if derr != nil || aerr != nil || !dr.Authed || ar.Authed {
		t.Fatalf("dialer %v authed %v, accepter %v authed %v; want the dialer only authed", derr, dr.Authed, aerr, ar.Authed)
	}
}

// TestIdentityRefusals: each refusal ends both sides, the refusing one
// with its error, the other with ErrPeerRefused carrying the reason.
func TestIdentityRefusals(t *testing.T) {
	dk, ak, other := testStatic(t), testStatic(t), testStatic(t)
	notListed := func([]byte) error { return errors.New("not in the authorized keys") }
	for _, tc := range []struct {
		name       string
		c          idCase
		refuser    string // "dialer" or "accepter"
		want       error
		reasonText string
	}{
		{"accepter refuses the key", idCase{dID: dk, aID: ak, dVerify: pinned(ak.Public), aVerify: notListed}, "accepter", ErrIdentityRefused, "not in the authorized keys"},
		{"pinned key mismatch", idCase{dID: dk, aID: ak, dVerify: pinned(other.Public)}, "dialer", ErrIdentityRefused, "is not the one pinned"},
		{"dialer has no identity", idCase{aID: ak, aRequire: true}, "accepter", ErrNoPeerIdentity, "has no identity"},
		{"listener has no identity", idCase{dID: dk, dRequire: true, dVerify: pinned(ak.Public)}, "dialer", ErrNoPeerIdentity, "has no identity"},
		{"identity and psk, psk only on one side", idCase{dID: dk, aID: ak, aKey: testKey}, "accepter", ErrNoPeerKey, "no pre-shared key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, a, _ := runIdentity(t, tc.c)
			refuser, other := a, d
			if tc.refuser == "dialer" {
				refuser, other = d, a
			}
			_, err := refuser.hs.Result()
			wantErr(t, tc.refuser, err, tc.want)
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("%v does not match ErrAuth (a permanent error)", err)
			}
			_, oerr := other.hs.Result()
			if oerr == nil {
				t.Fatal("the other side succeeded")
			}
			if !errors.Is(oerr, ErrAuth) {
				t.Fatalf("other side: %v, want the peer's refusal or its own (ErrAuth)", oerr)
			}
			if errors.Is(oerr, ErrPeerRefused) && !strings.Contains(oerr.Error(), tc.reasonText) {
				t.Fatalf("other side: %v, want the reason %q", oerr, tc.reasonText)
			}
		})
	}
}

// TestIdentityPSK: with a key and identities on both sides, XXpsk3 mixes
// the key in: the same key authenticates both sides with no check of the
// static keys; different keys fail on both sides with a reason.
func TestIdentityPSK(t *testing.T) {
	dk, ak := testStatic(t), testStatic(t)
	d, a, _ := runIdentity(t, idCase{dID: dk, aID: ak, dKey: testKey, aKey: testKey, dVerify: pinned(ak.Public)})
	dr, derr := d.hs.Result()
	ar, aerr := a.hs.Result()
	if derr != nil || aerr != nil || !dr.Authed || !ar.Authed || dr.Sealer == nil {
		t.Fatalf("same key: dialer %v %v, accepter %v %v", derr, dr.Authed, aerr, ar.Authed)
	}
	d, a, _ = runIdentity(t, idCase{dID: dk, aID: ak, dKey: testKey, aKey: []byte("another key, just as long as it"), dVerify: pinned(ak.Public)})
	_, aerr = a.hs.Result()
	_, derr = d.hs.Result()
	wantErr(t, "accepter", aerr, ErrIdentityHandshake)
	wantErr(t, "dialer", derr, ErrKeyMismatch)
}

// TestIdentityTamperedHello: a capability taken out of the dialer's HELLO
// on the way makes the listener's XX message fail to open at the dialer.
func TestIdentityTamperedHello(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	dk, ak := testStatic(t), testStatic(t)
	dh := testHello(RoleDialer)
	dh.Capabilities |= CapUnbind
	d := newSide(HandshakeConfig{Hello: dh, MaxSkew: time.Minute, Identity: dk, VerifyPeer: pinned(ak.Public)}, now)
	a := newSide(HandshakeConfig{Hello: testHello(RoleAccepter), MaxSkew: time.Minute, Identity: ak}, now)
	out := d.hs.Output()
	f, err := NewReader(bytes.NewReader(out[0]), 1<<16).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHello(f.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	f.Release()
	h.Capabilities &^= CapUnbind // a downgrade the accepter cannot tell
	a.in.Write(AppendFrame(nil, NewHello(h), 1))
	pumpToEnd(t, d, a, now)
	_, derr := d.hs.Result()
	_, aerr := a.hs.Result()
	wantErr(t, "dialer", derr, ErrIdentityHandshake)
	wantErr(t, "accepter", aerr, ErrPeerRefused)
	if s, _ := d.hs.Channel(); s != nil {
		t.Fatal("the dialer has a channel after a failed handshake")
	}
}
