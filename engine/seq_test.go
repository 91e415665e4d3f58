package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
)

// seqFrame builds a DATA frame on stream 1 numbered seq whose payload is the
// bytes of tag (none when tag is empty).
func seqFrame(tb testing.TB, seq uint64, tag string) *Frame {
	tb.Helper()
	f := dataFrame(tb, TypeData, 1, tag)
	f.Seq = seq
	return f
}

func TestTypeSequenced(t *testing.T) {
	carrier := map[Type]bool{TypeHello: true, TypeAuth: true, TypeAck: true, TypePing: true, TypePong: true, TypeGoAway: true}
	for ty := Type(1); ty <= typeMax; ty++ {
		if got, want := ty.Sequenced(), !carrier[ty]; got != want {
			t.Errorf("%v.Sequenced() = %v, want %v", ty, got, want)
		}
	}
	// The stream frames, by name, so a renumbering cannot hide one.
	for _, ty := range []Type{TypeOpen, TypeOpenOK, TypeOpenFail, TypeData, TypeCredit, TypeFin, TypeRst, TypeBind, TypeBindOK} {
		if !ty.Sequenced() {
			t.Errorf("%v is not sequenced", ty)
		}
	}
}

// ---- ACK ----

func TestAckRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		a    Ack
	}{
		{"zero", Ack{}},
		{"small", Ack{Received: 1, CarrierBytes: 20}},
		{"wide", Ack{Received: 0x0102030405060708, CarrierBytes: 0x1112131415161718}},
		{"max", Ack{Received: math.MaxUint64, CarrierBytes: math.MaxUint64}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendAck([]byte("pfx"), tc.a)
			if len(b) != 3+AckLen || string(b[:3]) != "pfx" {
				t.Fatalf("AppendAck = % x: prefix lost or wrong length", b)
			}
			if binary.BigEndian.Uint64(b[3:]) != tc.a.Received || binary.BigEndian.Uint64(b[11:]) != tc.a.CarrierBytes {
				t.Fatalf("AppendAck = % x: not received then carrier bytes, big-endian", b[3:])
			}
			got, err := ParseAck(b[3:])
			wantErr(t, "ParseAck", err, nil)
			if got != tc.a {
				t.Fatalf("ParseAck = %+v, want %+v", got, tc.a)
			}
		})
	}
}

func TestAckWire(t *testing.T) {
	b := AppendAck(nil, Ack{Received: 0x0102030405060708, CarrierBytes: 0xA0B0C0D0E0F00010})
	want := []byte{1, 2, 3, 4, 5, 6, 7, 8, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0, 0xF0, 0x00, 0x10}
	if !bytes.Equal(b, want) {
		t.Fatalf("AppendAck = % x, want % x", b, want)
	}
}

func TestNewAck(t *testing.T) {
	checkPool(t)
	a := Ack{Received: 77, CarrierBytes: 12345}
	f := NewAck(a)
	if f.Type != TypeAck || f.Stream != 0 || f.Seq != 0 || f.Flags != 0 || f.Len() != AckLen {
		t.Fatalf("NewAck = %v seq %d flags %#x", f, f.Seq, f.Flags)
	}
	if f.WireLen() != HeaderLen+AckLen {
		t.Fatalf("WireLen %d, want %d: an ACK carries no sequence number", f.WireLen(), HeaderLen+AckLen)
	}
	got, err := ParseAck(f.Bytes())
	wantErr(t, "ParseAck", err, nil)
	if got != a {
		t.Fatalf("ParseAck(NewAck) = %+v, want %+v", got, a)
	}
	// It survives the codec on a sequenced link, unnumbered.
	r := NewReader(bytes.NewReader(encodeFrame(t, f, Version)), 64)
	r.Version, r.Seq = Version, true
	g, err := r.ReadFrame()
	wantErr(t, "ReadFrame", err, nil)
	defer g.Release()
	if g.Type != TypeAck || g.Seq != 0 || g.Flags&FlagSeq != 0 {
		t.Fatalf("read back %v seq %d flags %#x", g, g.Seq, g.Flags)
	}
	if got, err := ParseAck(g.Bytes()); err != nil || got != a {
		t.Fatalf("ParseAck after the codec = %+v, %v", got, err)
	}
}

func TestParseAckErrors(t *testing.T) {
	for _, n := range []int{0, 1, 8, AckLen - 1, AckLen + 1, 2 * AckLen, 100} {
		_, err := ParseAck(make([]byte, n))
		wantErr(t, fmt.Sprintf("ParseAck of %d bytes", n), err, ErrMalformed)
		wantErr(t, fmt.Sprintf("ParseAck of %d bytes", n), err, ErrProtocol)
	}
	_, err := ParseAck(nil)
	wantErr(t, "ParseAck(nil)", err, ErrMalformed)
}

func FuzzParseAck(f *testing.F) {
	f.Add([]byte{})
	f.Add(AppendAck(nil, Ack{}))
	f.Add(AppendAck(nil, Ack{Received: 1, CarrierBytes: 32}))
	f.Add(AppendAck(nil, Ack{Received: math.MaxUint64, CarrierBytes: 1}))
	f.Add(make([]byte, AckLen-1))
	f.Add(make([]byte, AckLen+1))
	f.Fuzz(func(t *testing.T, p []byte) {
		a, err := ParseAck(p)
		if len(p) != AckLen {
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("ParseAck of %d bytes: %v, want ErrMalformed", len(p), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseAck of %d bytes: %v", len(p), err)
		}
		re := AppendAck(nil, a)
		if !bytes.Equal(re, p) {
			t.Fatalf("re-encoded % x, parsed from % x", re, p)
		}
		if b, err := ParseAck(re); err != nil || b != a {
			t.Fatalf("re-parsed %+v, %v; want %+v", b, err, a)
		}
	})
}

// ---- LinkHello ----

func testLinkID(seed byte) LinkID {
	var id LinkID
	for i := range id {
		id[i] = seed + byte(i)*17
	}
	return id
}

func TestLinkHelloRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		l    LinkHello
	}{
		{"new link", LinkHello{ID: testLinkID(1), Reorder: DefaultReorder}},
		{"zero id (accepter)", LinkHello{Reorder: DefaultReorder}},
		{"minimum reorder", LinkHello{ID: testLinkID(2), Reorder: minReorder}},
		{"max reorder", LinkHello{ID: testLinkID(3), Reorder: math.MaxUint32}},
		{"join", LinkHello{ID: testLinkID(4), Join: true, Received: 12345, Reorder: DefaultReorder}},
		{"join from nothing", LinkHello{ID: testLinkID(5), Join: true, Received: 0, Reorder: minReorder}},
		{"join max received", LinkHello{ID: testLinkID(6), Join: true, Received: math.MaxUint64, Reorder: DefaultReorder}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &Hello{MinVersion: 1, MaxVersion: 1, Role: RoleDialer, Capabilities: CapPSK,
				MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow,
				Extensions: map[uint8][]byte{7: []byte("other")}}
			SetLinkHello(h, tc.l)
			if h.Capabilities != CapPSK|CapSeq {
				t.Fatalf("capabilities %#x, want CapPSK|CapSeq", h.Capabilities)
			}
			if string(h.Extensions[7]) != "other" {
				t.Fatalf("SetLinkHello lost another extension: %q", h.Extensions[7])
			}
			_, hasJoin := h.Extensions[ExtJoin]
			_, hasRecv := h.Extensions[ExtReceived]
			if hasJoin != tc.l.Join || hasRecv != tc.l.Join {
				t.Fatalf("join %v: ExtJoin present %v, ExtReceived present %v", tc.l.Join, hasJoin, hasRecv)
			}
			got, err := ParseLinkHello(h)
			wantErr(t, "ParseLinkHello", err, nil)
			if got != tc.l {
				t.Fatalf("ParseLinkHello = %+v, want %+v", got, tc.l)
			}
			// And over the wire.
			wire, err := ParseHello(AppendHello(nil, h))
			wantErr(t, "ParseHello", err, nil)
			got, err = ParseLinkHello(wire)
			wantErr(t, "ParseLinkHello after the wire", err, nil)
			if got != tc.l {
				t.Fatalf("ParseLinkHello after the wire = %+v, want %+v", got, tc.l)
			}
		})
	}
}

func TestSetLinkHelloNilExtensions(t *testing.T) {
	h := &Hello{}
	l := LinkHello{ID: testLinkID(9), Reorder: DefaultReorder}
	SetLinkHello(h, l)
	if h.Capabilities&CapSeq == 0 || len(h.Extensions) != 2 {
		t.Fatalf("hello %+v: want CapSeq and two extensions", h)
	}
	if !bytes.Equal(h.Extensions[ExtLinkID], l.ID[:]) {
		t.Fatalf("ExtLinkID % x, want % x", h.Extensions[ExtLinkID], l.ID[:])
	}
	if !bytes.Equal(h.Extensions[ExtReorder], []byte{0x01, 0x00, 0x00, 0x00}) {
		t.Fatalf("ExtReorder % x, want 16 MiB big-endian", h.Extensions[ExtReorder])
	}
	// The extension is a copy: changing it does not change l, and
	// changing l's array afterwards does not change the HELLO.
	l.ID[0] ^= 0xFF
	if h.Extensions[ExtLinkID][0] == l.ID[0] {
		t.Fatal("ExtLinkID aliases the LinkHello")
	}
	if got := (LinkID{0x01, 0x12, 0x23, 0x34, 0xFF}).String(); got != "01122334" {
		t.Fatalf("LinkID.String() = %q, want the first 4 bytes in hex", got)
	}
}

func TestParseLinkHelloErrors(t *testing.T) {
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	tests := []struct {
		name string
		edit func(h *Hello)
	}{
		{"no CapSeq", func(h *Hello) { h.Capabilities &^= CapSeq }},
		{"no CapSeq, no extensions", func(h *Hello) { h.Capabilities, h.Extensions = 0, nil }},
		{"nil extensions", func(h *Hello) { h.Extensions = nil }},
		{"missing link id", func(h *Hello) { delete(h.Extensions, ExtLinkID) }},
		{"empty link id", func(h *Hello) { h.Extensions[ExtLinkID] = []byte{} }},
		{"short link id", func(h *Hello) { h.Extensions[ExtLinkID] = make([]byte, LinkIDLen-1) }},
		{"long link id", func(h *Hello) { h.Extensions[ExtLinkID] = make([]byte, LinkIDLen+1) }},
		{"missing reorder", func(h *Hello) { delete(h.Extensions, ExtReorder) }},
		{"empty reorder", func(h *Hello) { h.Extensions[ExtReorder] = nil }},
		{"short reorder", func(h *Hello) { h.Extensions[ExtReorder] = []byte{0x01, 0, 0} }},
		{"long reorder", func(h *Hello) { h.Extensions[ExtReorder] = append(u32(DefaultReorder), 0) }},
		{"reorder zero", func(h *Hello) { h.Extensions[ExtReorder] = u32(0) }},
		{"reorder below the minimum", func(h *Hello) { h.Extensions[ExtReorder] = u32(minReorder - 1) }},
		{"join without received", func(h *Hello) { delete(h.Extensions, ExtReceived) }},
		{"join with a short received", func(h *Hello) { h.Extensions[ExtReceived] = u64(5)[:7] }},
		{"join with a long received", func(h *Hello) { h.Extensions[ExtReceived] = append(u64(5), 0) }},
		{"join with an empty received", func(h *Hello) { h.Extensions[ExtReceived] = []byte{} }},
		{"join with a payload", func(h *Hello) { h.Extensions[ExtJoin] = []byte{1} }},
		{"join with a long payload", func(h *Hello) { h.Extensions[ExtJoin] = make([]byte, 8) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &Hello{}
			SetLinkHello(h, LinkHello{ID: testLinkID(1), Join: true, Received: 5, Reorder: DefaultReorder})
			if _, err := ParseLinkHello(h); err != nil {
				t.Fatalf("the unedited HELLO does not parse: %v", err)
			}
			tc.edit(h)
			_, err := ParseLinkHello(h)
			wantErr(t, "ParseLinkHello", err, ErrMalformed)
			wantErr(t, "ParseLinkHello", err, ErrProtocol)
			// The same verdict after the wire.
			w, err := ParseHello(AppendHello(nil, h))
			wantErr(t, "ParseHello", err, nil)
			_, err = ParseLinkHello(w)
			wantErr(t, "ParseLinkHello after the wire", err, ErrMalformed)
		})
	}
}

// TestParseLinkHelloReceivedWithoutJoin: a received with no join means
// nothing and is not reported.
func TestParseLinkHelloReceivedWithoutJoin(t *testing.T) {
	h := &Hello{}
	SetLinkHello(h, LinkHello{ID: testLinkID(1), Reorder: minReorder})
	h.Extensions[ExtReceived] = binary.BigEndian.AppendUint64(nil, 99)
	l, err := ParseLinkHello(h)
	wantErr(t, "ParseLinkHello", err, nil)
	if l.Join || l.Received != 0 {
		t.Fatalf("ParseLinkHello = %+v, want no join and no received", l)
	}
}

// FuzzParseLinkHello builds a HELLO from its capabilities and the four link
// extensions, each present when its bit of present is set. ParseLinkHello
// must never panic, must refuse with ErrMalformed, and what it accepts must
// match the extensions and survive SetLinkHello, the wire and
// ParseLinkHello again unchanged.
func FuzzParseLinkHello(f *testing.F) {
	id := testLinkID(1)
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	f.Add(CapSeq, uint8(0b0011), id[:], u32(DefaultReorder), []byte{}, []byte{})
	f.Add(CapSeq|CapPSK, uint8(0b1111), id[:], u32(minReorder), []byte{}, u64(42))
	f.Add(CapSeq, uint8(0b0111), id[:], u32(minReorder), []byte{}, u64(42))
	f.Add(CapSeq, uint8(0b1111), id[:], u32(minReorder-1), []byte{}, u64(42))
	f.Add(CapSeq, uint8(0b1111), id[:], u32(minReorder), []byte{0}, u64(42))
	f.Add(CapSeq, uint8(0b0011), id[:15], u32(DefaultReorder), []byte{}, []byte{})
	f.Add(CapSeq, uint8(0b0011), id[:], []byte{1, 0, 0}, []byte{}, []byte{})
	f.Add(uint32(0), uint8(0b1111), id[:], u32(DefaultReorder), []byte{}, u64(1))
	f.Fuzz(func(t *testing.T, caps uint32, present uint8, id, reorder, join, received []byte) {
		h := &Hello{Capabilities: caps, Extensions: map[uint8][]byte{}}
		for i, v := range [][]byte{id, reorder, join, received} {
			if present&(1<<i) != 0 {
				h.Extensions[[]uint8{ExtLinkID, ExtReorder, ExtJoin, ExtReceived}[i]] = v
			}
		}
		l, err := ParseLinkHello(h)
		// The same verdict after the wire, unless an extension is too
		// long for its u16 length (the OR of the lengths is above
		// MaxUint16 exactly when one of them is).
		if len(id)|len(reorder)|len(join)|len(received) <= math.MaxUint16 {
			w, perr := ParseHello(AppendHello(nil, h))
			if perr != nil {
				t.Fatalf("ParseHello of our own HELLO: %v", perr)
			}
			l2, err2 := ParseLinkHello(w)
			if (err == nil) != (err2 == nil) || l2 != l {
				t.Fatalf("after the wire: %+v, %v; before: %+v, %v", l2, err2, l, err)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("ParseLinkHello: %v, want ErrMalformed", err)
			}
			return
		}
		if caps&CapSeq == 0 || !bytes.Equal(l.ID[:], id) || l.Reorder != binary.BigEndian.Uint32(reorder) || l.Reorder < minReorder {
			t.Fatalf("accepted %+v from caps %#x id % x reorder % x", l, caps, id, reorder)
		}
		if l.Join != (present&4 != 0) {
			t.Fatalf("join %v, extension present %v", l.Join, present&4 != 0)
		}
		if l.Join && (len(join) != 0 || l.Received != binary.BigEndian.Uint64(received)) {
			t.Fatalf("join %+v from join % x received % x", l, join, received)
		}
		if !l.Join && l.Received != 0 {
			t.Fatalf("received %d without a join", l.Received)
		}
		h2 := &Hello{}
		SetLinkHello(h2, l)
		w, err := ParseHello(AppendHello(nil, h2))
		if err != nil {
			t.Fatalf("ParseHello of a re-encoded link HELLO: %v", err)
		}
		l2, err := ParseLinkHello(w)
		if err != nil || l2 != l {
			t.Fatalf("re-encoded %+v parses as %+v, %v", l, l2, err)
		}
	})
}

// ---- Frame: sequence number on the wire, reference counting ----
