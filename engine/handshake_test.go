package engine

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// hsSide is one side of a handshake under test: its engine and a reader
// over what the other side wrote.
type hsSide struct {
	hs  *Handshake
	in  bytes.Buffer // what the peer wrote, not read yet
	r   *Reader
	err error
}

func newSide(cfg HandshakeConfig, now time.Time) *hsSide {
	s := &hsSide{hs: NewHandshake(cfg, now)}
	s.r = NewReader(&s.in, 1<<16)
	return s
}

// pump moves frames both ways until both sides are done or stuck, and
// returns how many frames crossed. Each side's reader switches to its
// records once its channel is up (keyed handshakes).
func pump(t *testing.T, a, b *hsSide, now time.Time) int {
	t.Helper()
	n := 0
	sealed := map[*hsSide]bool{}
	for progress := true; progress; {
		progress = false
		for _, p := range [][2]*hsSide{{a, b}, {b, a}} {
			from, to := p[0], p[1]
			for _, f := range from.hs.Output() {
				to.in.Write(f)
				n++
			}
			for !to.hs.Done() {
				f, err := to.r.ReadFrame()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					to.hs.ReadFailed(err)
					progress = true
					break
				}
				to.hs.Input(f, now)
				f.Release()
				if _, o := to.hs.Channel(); o != nil && !sealed[to] {
					sealed[to] = true
					rest := append(to.r.TakeBuffered(), to.in.Next(to.in.Len())...)
					to.in.Write(rest)
					to.r = NewReader(&recordReader{src: &to.in, o: o}, 1<<16)
				}
				if v, max, seq := to.hs.ReaderSettings(); v != 0 {
					to.r.Version, to.r.MaxPayload, to.r.Seq = v, max, seq
				}
				progress = true
			}
		}
	}
	return n
}

// pumpToEnd is pump, then a side left waiting when its peer is done reads
// the end of the carrier (the peer closes it).
func pumpToEnd(t *testing.T, a, b *hsSide, now time.Time) int {
	t.Helper()
	n := pump(t, a, b, now)
	for _, p := range [][2]*hsSide{{a, b}, {b, a}} {
		if p[0].hs.Done() && !p[1].hs.Done() {
			p[1].hs.ReadFailed(io.ErrUnexpectedEOF)
		}
	}
	return n
}

func testHello(role Role) *Hello {
	return &Hello{MinVersion: 1, MaxVersion: 1, Role: role, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow}
}

func TestHandshake(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key, other := []byte("a key both sides hold, long enough"), []byte("another key entirely, long enough")
	link := func(join bool) *LinkHello { return &LinkHello{ID: LinkID{1, 2, 3}, Join: join, Reorder: 1 << 20} }
	for _, tc := range []struct {
		name           string
		dialer, accept HandshakeConfig
		dialSkew       time.Duration
		wantDial       error // nil: success
		wantAccept     error
		authed         bool
	}{
		{name: "no keys", dialer: HandshakeConfig{}, accept: HandshakeConfig{}},
		{name: "same key", dialer: HandshakeConfig{Key: key}, accept: HandshakeConfig{Key: key}, authed: true},
		{name: "different keys", dialer: HandshakeConfig{Key: key}, accept: HandshakeConfig{Key: other},
			wantDial: ErrKeyMismatch, wantAccept: ErrKeyMismatch},
		{name: "key on the accepter only", dialer: HandshakeConfig{}, accept: HandshakeConfig{Key: key},
			wantDial: ErrNoLocalKey, wantAccept: ErrNoPeerKey},
		{name: "key on the dialler only", dialer: HandshakeConfig{Key: key}, accept: HandshakeConfig{},
			wantDial: ErrNoPeerKey, wantAccept: ErrNoLocalKey},
		{name: "clock too far", dialer: HandshakeConfig{Key: key}, accept: HandshakeConfig{Key: key}, dialSkew: time.Hour,
			wantDial: ErrPeerRefused, wantAccept: ErrClockSkew}, // the dialler's own clock (pump's) agrees with the accepter's
		{name: "sequenced", dialer: HandshakeConfig{Link: link(false)}, accept: HandshakeConfig{Link: &LinkHello{ID: LinkID{9}, Reorder: 1 << 20}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.dialer.Hello, tc.accept.Hello = testHello(RoleDialer), testHello(RoleAccepter)
			tc.dialer.MaxSkew, tc.accept.MaxSkew = time.Minute, time.Minute
			d := newSide(tc.dialer, now.Add(tc.dialSkew))
			a := newSide(tc.accept, now)
			pump(t, d, a, now)
			if !d.hs.Done() || !a.hs.Done() {
				t.Fatalf("not done: dialler waits for %s, accepter for %s", d.hs.Expecting(), a.hs.Expecting())
			}
			for _, s := range []struct {
				side *hsSide
				want error
			}{{d, tc.wantDial}, {a, tc.wantAccept}} {
				res, err := s.side.hs.Result()
				switch {
				case s.want == nil && err != nil:
					t.Fatalf("%v: %v", s.side.hs.cfg.Hello.Role, err)
				case s.want != nil && !errors.Is(err, s.want):
					t.Fatalf("%v: %v, want %v", s.side.hs.cfg.Hello.Role, err, s.want)
				case s.want != nil && strings.Count(err.Error(), s.want.Error()) != 1:
					t.Fatalf("%v: %q says %q more than once", s.side.hs.cfg.Hello.Role, err, s.want)
				case s.want == nil && res.Authed != tc.authed:
					t.Fatalf("%v: authed %v, want %v", s.side.hs.cfg.Hello.Role, res.Authed, tc.authed)
				}
			}
			if tc.name == "sequenced" {
				res, _ := d.hs.Result()
				if res.Params.Capabilities&CapSeq == 0 || res.Link.ID != (LinkID{9}) {
					t.Fatalf("sequenced: caps %x, peer's link %v", res.Params.Capabilities, res.Link.ID)
				}
			}
		})
	}
}

// TestHandshakeJoin: a dialler that joins a link waits for the accepter's
// ACK, and a GOAWAY in its place is the peer's refusal, mapped to
// ErrUnknownLink.
func TestHandshakeJoin(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name   string
		answer *Frame
		want   error
	}{
		{"ack", NewAck(Ack{Received: 42}), nil},
		{"unknown link", NewReason(TypeGoAway, 0, CodeUnknownLink, "no such link"), ErrUnknownLink},
		{"resume expired", NewReason(TypeGoAway, 0, CodeResumeExpired, "too late"), ErrPeerRefused},
		{"data instead", newFrame(TypeData, 1, []byte("x")), ErrStreamState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newSide(HandshakeConfig{Hello: testHello(RoleDialer), Link: &LinkHello{ID: LinkID{7}, Join: true, Received: 5, Reorder: 1 << 20}}, now)
			a := newSide(HandshakeConfig{Hello: testHello(RoleAccepter), Link: &LinkHello{ID: LinkID{7}, Reorder: 1 << 20}}, now)
			pump(t, d, a, now)
			if !a.hs.Done() || d.hs.Done() || d.hs.Expecting() != "the answer to our join" {
				t.Fatalf("accepter done %v; dialler done %v, waiting for %s", a.hs.Done(), d.hs.Done(), d.hs.Expecting())
			}
			d.hs.Input(tc.answer, now)
			tc.answer.Release()
			res, err := d.hs.Result()
			if !d.hs.Done() || !errors.Is(err, tc.want) && tc.want != nil || tc.want == nil && err != nil {
				t.Fatalf("after the answer: done %v, %v; want %v", d.hs.Done(), err, tc.want)
			}
			if tc.want == nil && res.JoinAck.Received != 42 {
				t.Fatalf("join ACK %+v", res.JoinAck)
			}
		})
	}
}

// TestHandshakeRefusals: what a handshake refuses goes to the peer as a
// GOAWAY with the code that says why, and the peer reports it.
func TestHandshakeRefusals(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	old := testHello(RoleDialer)
	old.MinVersion, old.MaxVersion = 1, 1
	newer := testHello(RoleAccepter)
	newer.MinVersion, newer.MaxVersion = 2, 3
	d := newSide(HandshakeConfig{Hello: old}, now)
	a := newSide(HandshakeConfig{Hello: newer}, now)
	d.r.Version, a.r.Version = 0, 0
	pump(t, d, a, now)
	if _, err := a.hs.Result(); !errors.Is(err, ErrVersion) {
		t.Fatalf("accepter: %v, want ErrVersion", err)
	}
	if _, err := d.hs.Result(); !errors.Is(err, ErrVersion) {
		t.Fatalf("dialler: %v, want ErrVersion", err)
	}

	// A read that fails with a protocol error is told to the peer.
	h := NewHandshake(HandshakeConfig{Hello: testHello(RoleAccepter)}, now)
	h.Output()
	h.ReadFailed(ErrBadMagic)
	out := h.Output()
	if !h.Done() || len(out) != 1 {
		t.Fatalf("after a bad first frame: done %v, %d frames out", h.Done(), len(out))
	}
	r := NewReader(bytes.NewReader(out[0]), 1<<16)
	r.Version = 1
	f, err := r.ReadFrame()
	if err != nil || f.Type != TypeGoAway {
		t.Fatalf("sent %v, %v; want GOAWAY", f, err)
	}
	if reason, _ := ParseReason(f.Bytes()); reason.Code != CodeProtocol {
		t.Fatalf("GOAWAY code %v, want protocol", reason.Code)
	}
	f.Release()
}

// FuzzHandshake feeds one side any frames after the peer's HELLO: it
// never panics, and once done it stays done with one verdict.
func FuzzHandshake(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	peer := testHello(RoleDialer)
	AddFreshness(peer, now)
	hello := AppendFrame(nil, NewHello(peer), 1)
	f.Add(hello, byte(0), byte(1))
	f.Add(append(hello, AppendFrame(nil, newFrame(TypeAuth, 0, make([]byte, AuthLen)), 1)...), byte(1), byte(0))
	f.Fuzz(func(t *testing.T, wire []byte, keyed, join byte) {
		cfg := HandshakeConfig{Hello: testHello(RoleAccepter), MaxSkew: time.Minute, Replay: NewReplayCache(16)}
		if keyed&1 == 1 {
			cfg.Key = []byte("the key, at least sixteen bytes")
		}
		if join&1 == 1 {
			cfg.Hello.Role = RoleDialer
			cfg.Link = &LinkHello{Join: true, Reorder: 1 << 20}
		}
		h := NewHandshake(cfg, now)
		r := NewReader(bytes.NewReader(wire), 1<<16)
		for i := 0; i < 8 && !h.Done(); i++ {
			fr, err := r.ReadFrame()
			if err != nil {
				h.ReadFailed(err)
				break
			}
			h.Input(fr, now)
			fr.Release()
			if v, max, seq := h.ReaderSettings(); v != 0 {
				r.Version, r.MaxPayload, r.Seq = v, max, seq
			}
		}
		h.Output()
		if h.Done() {
			_, err := h.Result()
			h.Input(newFrame(TypePing, 0, make([]byte, 8)), now)
			if _, again := h.Result(); !errors.Is(again, err) && (again != nil || err != nil) {
				t.Fatalf("verdict changed after done: %v then %v", err, again)
			}
		}
	})
}
