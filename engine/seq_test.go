package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
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

func TestSeqFrameWire(t *testing.T) {
	checkPool(t)
	f := dataFrame(t, TypeData, 0x01020304, "abc")
	f.Flags = 0x8000 // an unknown flag is kept beside FlagSeq
	f.Seq = 0x1112131415161718
	if f.WireLen() != HeaderLen+SeqLen+3 {
		t.Fatalf("WireLen %d, want %d", f.WireLen(), HeaderLen+SeqLen+3)
	}
	var b [MaxHeaderLen]byte
	if n := f.PutHeader(b[:], Version); n != HeaderLen+SeqLen {
		t.Fatalf("PutHeader = %d, want %d", n, HeaderLen+SeqLen)
	}
	want := []byte{
		Version, byte(TypeData), 0x80, 0x01, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 3, // length: the payload only
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		'a', 'b', 'c',
	}
	wire := AppendFrame(nil, f, Version)
	if !bytes.Equal(wire, want) {
		t.Fatalf("AppendFrame = % x, want % x", wire, want)
	}
	if f.Flags != 0x8000 {
		t.Fatalf("PutHeader changed the frame's flags to %#x", f.Flags)
	}

	// Unsequenced: 12 bytes, no FlagSeq.
	f.Seq = 0
	var c [MaxHeaderLen]byte
	if n := f.PutHeader(c[:], Version); n != HeaderLen {
		t.Fatalf("PutHeader unsequenced = %d, want %d", n, HeaderLen)
	}
	if binary.BigEndian.Uint16(c[2:]) != 0x8000 || f.WireLen() != HeaderLen+3 {
		t.Fatalf("unsequenced flags %#x wire %d", binary.BigEndian.Uint16(c[2:]), f.WireLen())
	}
	if got := AppendFrame(nil, f, Version); len(got) != f.WireLen() {
		t.Fatalf("AppendFrame %d bytes, WireLen %d", len(got), f.WireLen())
	}
	f.Release()

	// An empty sequenced frame is 20 bytes.
	e := NewEmpty(TypeFin, 3)
	e.Seq = 1
	if got := encodeFrame(t, e, Version); len(got) != HeaderLen+SeqLen || e.WireLen() != HeaderLen+SeqLen {
		t.Fatalf("empty sequenced frame: %d bytes on the wire, WireLen %d", len(got), e.WireLen())
	}
	// With an After it is 24, the most a header takes.
	e.After = 1
	if got := encodeFrame(t, e, Version); len(got) != MaxHeaderLen || e.WireLen() != MaxHeaderLen {
		t.Fatalf("empty frame with an After: %d bytes on the wire, WireLen %d", len(got), e.WireLen())
	}
}

// seqSample is a frame to send and what reading it must give.
type seqSample struct {
	f       *Frame
	Type    Type
	Stream  uint32
	Seq     uint64
	Payload []byte
}

func seqSamples(tb testing.TB) (wire []byte, want []seqSample) {
	tb.Helper()
	mk := func(f *Frame, seq uint64) *Frame { f.Seq = seq; return f }
	frames := []*Frame{
		mk(NewOpen(1, TargetDial, "example.com:80", []byte("GET /")), 1),
		mk(NewEmpty(TypeOpenOK, 1), 2),
		mk(dataFrame(tb, TypeData, 1, "some bytes"), 3),
		NewAck(Ack{Received: 3, CarrierBytes: 99}), // per carrier: unsequenced
		mk(NewCredit(1, 4096), 5),                  // sequence numbers need not be contiguous on one carrier
		NewPing(TypePing, 7),
		mk(NewEmpty(TypeFin, 1), 6),
		mk(NewReason(TypeRst, 3, CodeCancelled, "gone"), 1<<40),
		mk(dataFrame(tb, TypeData, 9, ""), math.MaxUint64),
		NewReason(TypeGoAway, 0, CodeShutdown, "bye"),
	}
	for _, f := range frames {
		want = append(want, seqSample{Type: f.Type, Stream: f.Stream, Seq: f.Seq, Payload: append([]byte(nil), f.Bytes()...)})
		wire = append(wire, encodeFrame(tb, f, Version)...)
	}
	return wire, want
}

func TestReadSeqFrames(t *testing.T) {
	wire, want := seqSamples(t)
	for _, tc := range wireReaders(wire) {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(tc.make(), tc.size)
			r.Version, r.Seq = Version, true
			off := 0
			for i, w := range want {
				f, err := r.ReadFrame()
				wantErr(t, "ReadFrame", err, nil)
				got := seqSample{Type: f.Type, Stream: f.Stream, Seq: f.Seq, Payload: append([]byte(nil), f.Bytes()...)}
				flagged := f.Flags&FlagSeq != 0
				n := f.WireLen()
				re := AppendFrame(nil, f, Version)
				f.Release()
				if got.Type != w.Type || got.Stream != w.Stream || got.Seq != w.Seq || !bytes.Equal(got.Payload, w.Payload) {
					t.Fatalf("frame %d = %+v, want %+v", i, got, w)
				}
				if flagged != (w.Seq != 0) {
					t.Fatalf("frame %d: FlagSeq %v with seq %d", i, flagged, w.Seq)
				}
				if !bytes.Equal(re, wire[off:off+n]) {
					t.Fatalf("frame %d re-encodes to % x, read from % x", i, re, wire[off:off+n])
				}
				off += n
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("after the frames: %v, want io.EOF", err)
			}
			if off != len(wire) {
				t.Fatalf("WireLen adds up to %d, the wire is %d", off, len(wire))
			}
		})
	}
}

// TestReadUnsequencedWithSeq: a Reader that allows sequenced frames still
// reads the unsequenced ones of a stream that has none.
func TestReadUnsequencedWithSeq(t *testing.T) {
	wire, want := sampleFrames(t)
	checkPool(t)
	r := NewReader(bytes.NewReader(wire), 64)
	r.Version, r.Seq = Version, true
	wantErr(t, "readAll", readAll(t, r, want), io.EOF)
}

// TestReadSeqHelloFlagIgnored: in the handshake the flags of a HELLO mean
// nothing, FlagSeq included: no sequence number is read.
func TestReadSeqHelloFlagIgnored(t *testing.T) {
	checkPool(t)
	f := NewHello(&Hello{MinVersion: 1, MaxVersion: 1, Role: RoleDialer, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow})
	f.Flags = FlagSeq
	wire := encodeFrame(t, f, Version)
	for _, seq := range []bool{false, true} {
		r := NewReader(bytes.NewReader(wire), 64)
		r.Seq = seq
		g, err := r.ReadFrame()
		wantErr(t, "ReadFrame", err, nil)
		if g.Type != TypeHello || g.Seq != 0 {
			g.Release()
			t.Fatalf("Seq %v: read %v seq %d", seq, g, g.Seq)
		}
		_, err = ParseHello(g.Bytes())
		g.Release()
		wantErr(t, "ParseHello", err, nil)
		if _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("Seq %v: after the HELLO: %v, want io.EOF", seq, err)
		}
	}
}

func TestReadSeqFrameErrors(t *testing.T) {
	hdr := func(h Header) []byte {
		b := make([]byte, HeaderLen)
		PutHeader(b, h)
		return b
	}
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	good := encodeFrame(t, seqFrame(t, 7, "abc"), Version)
	seqHdr := hdr(Header{Version: Version, Type: TypeData, Flags: FlagSeq, Stream: 1, Length: 3})
	type test struct {
		name     string
		r        io.Reader
		seq      bool // Reader.Seq
		frames   int  // good frames before the error
		want     error
		notTrunc bool // the error must not be ErrTruncated
	}
	tests := []test{
		{name: "good", r: bytes.NewReader(catBytes(good, good)), seq: true, frames: 2, want: io.EOF},
		{name: "FlagSeq without CapSeq", r: bytes.NewReader(good), want: ErrMalformed, notTrunc: true},
		{name: "FlagSeq without CapSeq after a frame",
			r:    bytes.NewReader(catBytes(encodeFrame(t, dataFrame(t, TypeData, 1, "abc"), Version), good)),
			want: ErrMalformed, frames: 1, notTrunc: true},
		{name: "FlagSeq on an ACK without CapSeq", r: bytes.NewReader(catBytes(hdr(Header{Version: Version, Type: TypeAck, Flags: FlagSeq, Length: 0}), u64(1))),
			want: ErrMalformed, notTrunc: true},
		{name: "seq 0", r: bytes.NewReader(catBytes(seqHdr, u64(0), []byte("abc"))), seq: true, want: ErrMalformed, notTrunc: true},
		{name: "seq 0 after a frame", r: bytes.NewReader(catBytes(good, seqHdr, u64(0), []byte("abc"))), seq: true, frames: 1, want: ErrMalformed, notTrunc: true},
		{name: "seq 0 empty", r: bytes.NewReader(catBytes(hdr(Header{Version: Version, Type: TypeFin, Flags: FlagSeq, Stream: 1}), u64(0))), seq: true, want: ErrMalformed},
		{name: "payload cut short after seq", r: bytes.NewReader(catBytes(seqHdr, u64(1), []byte("ab"))), seq: true, want: ErrTruncated},
		{name: "payload missing after seq", r: bytes.NewReader(catBytes(seqHdr, u64(1))), seq: true, want: ErrTruncated},
		{name: "carrier error in seq", r: io.MultiReader(bytes.NewReader(catBytes(seqHdr, u64(1)[:3])), iotest.ErrReader(errCarrier)),
			seq: true, want: errCarrier, notTrunc: true},
		{name: "carrier error right after the header", r: io.MultiReader(bytes.NewReader(seqHdr), iotest.ErrReader(errCarrier)),
			seq: true, want: errCarrier, notTrunc: true},
		{name: "carrier error in payload after seq", r: io.MultiReader(bytes.NewReader(catBytes(seqHdr, u64(1), []byte("a"))), iotest.ErrReader(errCarrier)),
			seq: true, want: errCarrier, notTrunc: true},
	}
	for k := range SeqLen {
		tests = append(tests, test{name: fmt.Sprintf("seq cut at %d bytes", k), r: bytes.NewReader(catBytes(good, seqHdr, u64(9)[:k])), seq: true, frames: 1, want: ErrTruncated})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(tc.r, 16)
			r.Version, r.Seq = Version, tc.seq
			var err error
			for i := 0; ; i++ {
				var f *Frame
				if f, err = r.ReadFrame(); err != nil {
					if i != tc.frames {
						t.Fatalf("error after %d frames, want %d: %v", i, tc.frames, err)
					}
					break
				}
				f.Release()
			}
			wantErr(t, "ReadFrame", err, tc.want)
			if tc.want != io.EOF && tc.want != errCarrier {
				wantErr(t, "ReadFrame", err, ErrProtocol)
			}
			if tc.notTrunc && errors.Is(err, ErrTruncated) {
				t.Fatalf("reported as truncation: %v", err)
			}
		})
	}
}

// FuzzReadSeqFrames reads arbitrary bytes with a Reader that allows
// sequenced frames. It must never panic; every frame must re-encode to the
// bytes it was read from, with a non-zero sequence number exactly when
// FlagSeq is set; the reading must end with io.EOF exactly at the end of
// the input and with a protocol error otherwise; and every buffer must come
// back to the pool.
func FuzzReadSeqFrames(f *testing.F) {
	wire, _ := seqSamples(f)
	f.Add(wire)
	f.Add(wire[:HeaderLen+3])
	f.Add(encodeFrame(f, seqFrame(f, 1, "x"), Version))
	f.Add(encodeFrame(f, seqFrame(f, 2, ""), Version))
	var zero [MaxHeaderLen]byte
	PutHeader(zero[:], Header{Version: Version, Type: TypeData, Flags: FlagSeq, Stream: 1})
	f.Add(zero[:])
	plain, _ := sampleFrames(f)
	f.Add(plain)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPool(t)
		r := NewReader(bytes.NewReader(data), 16)
		r.Version, r.Seq = Version, true
		off := 0
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				if off == len(data) {
					if err != io.EOF {
						t.Fatalf("at the end of the input: %v, want io.EOF", err)
					}
				} else if !errors.Is(err, ErrProtocol) {
					t.Fatalf("%d bytes left: %v, want a protocol error", len(data)-off, err)
				}
				return
			}
			n := fr.WireLen()
			flagged := fr.Flags&FlagSeq != 0
			seq := fr.Seq
			var re []byte
			if off+n <= len(data) {
				re = AppendFrame(nil, fr, Version)
			}
			fr.Release()
			if off+n > len(data) {
				t.Fatalf("frame of %d bytes runs past the input", n)
			}
			if flagged != (seq != 0) {
				t.Fatalf("FlagSeq %v with sequence number %d", flagged, seq)
			}
			if !bytes.Equal(re, data[off:off+n]) {
				t.Fatalf("re-encoded % x, read from % x", re, data[off:off+n])
			}
			off += n
		}
	})
}

func TestFrameRetainRelease(t *testing.T) {
	for owners := 1; owners <= 4; owners++ {
		checkPool(t)
		start := PoolOutstanding()
		f := seqFrame(t, 1, "payload")
		for range owners - 1 {
			f.Retain()
		}
		for i := range owners - 1 {
			f.Release()
			if f.Payload == nil || string(f.Bytes()) != "payload" {
				t.Fatalf("%d owners: payload gone after %d releases", owners, i+1)
			}
			if got := PoolOutstanding(); got != start+1 {
				t.Fatalf("%d owners: %d outstanding after %d releases, want %d", owners, got, i+1, start+1)
			}
		}
		f.Release()
		if f.Payload != nil {
			t.Fatalf("%d owners: the last Release kept the payload", owners)
		}
		if got := PoolOutstanding(); got != start {
			t.Fatalf("%d owners: %d outstanding after the last release, want %d", owners, got, start)
		}
		f.Release() // one too many: harmless
		if got := PoolOutstanding(); got != start {
			t.Fatalf("%d owners: an extra Release put a buffer back twice (%d, want %d)", owners, got, start)
		}
	}
	// Retain and Release without a payload do nothing.
	e := NewEmpty(TypeFin, 1)
	e.Retain()
	e.Release()
	e.Release()
}

// TestFrameReleaseConcurrent has several owners release each frame at the
// same moment (they meet before each frame, so their releases collide);
// every payload must go back exactly once. Run it with -race.
func TestFrameReleaseConcurrent(t *testing.T) {
	checkPool(t)
	const frames, owners = 20000, 2
	start := PoolOutstanding()
	fs := make([]*Frame, frames)
	for i := range fs {
		fs[i] = seqFrame(t, uint64(i+1), "x")
		for range owners - 1 {
			fs[i].Retain()
		}
	}
	if got := PoolOutstanding(); got != start+frames {
		t.Fatalf("%d outstanding, want %d", got, start+frames)
	}
	var (
		wg      sync.WaitGroup
		arrived atomic.Int64
	)
	for range owners {
		wg.Go(func() {
			for i, f := range fs {
				_ = f.Len() // an owner may read the payload until it lets go
				// Meet the other owners, then release together.
				arrived.Add(1)
				for spin := 0; arrived.Load() < int64(owners*(i+1)); spin++ {
					if spin > 1000 {
						runtime.Gosched()
					}
				}
				f.Release()
			}
		})
	}
	wg.Wait()
	if got := PoolOutstanding(); got != start {
		t.Fatalf("%d outstanding after every owner released, want %d", got, start)
	}
	for i, f := range fs {
		if f.Payload != nil {
			t.Fatalf("frame %d kept its payload", i)
		}
	}
}

// ---- Reorder ----

// popSeqs pops every frame now in order and returns their sequence numbers
// and payloads, releasing them.
func popSeqs(r *Reorder) (seqs []uint64, tags []string) {
	for f := r.Pop(); f != nil; f = r.Pop() {
		seqs = append(seqs, f.Seq)
		tags = append(tags, string(f.Bytes()))
		f.Release()
	}
	return seqs, tags
}

func TestReorderInOrder(t *testing.T) {
	checkPool(t)
	r := NewReorder(DefaultReorder)
	if r.Received() != 0 || r.Held() != 0 || r.Pop() != nil {
		t.Fatal("a new Reorder is not empty")
	}
	for s := uint64(1); s <= 100; s++ {
		wantErr(t, "Push", r.Push(seqFrame(t, s, "p")), nil)
		if r.Held() != 0 {
			t.Fatalf("frame %d in order: Held %d, want 0", s, r.Held())
		}
		seqs, tags := popSeqs(r)
		if !slices.Equal(seqs, []uint64{s}) || tags[0] != "p" {
			t.Fatalf("after pushing %d: popped %v", s, seqs)
		}
		if r.Received() != s {
			t.Fatalf("Received %d, want %d", r.Received(), s)
		}
	}
}

func TestReorderOutOfOrder(t *testing.T) {
	checkPool(t)
	r := NewReorder(DefaultReorder)
	wire := 0
	for _, s := range []uint64{3, 5, 4} {
		f := seqFrame(t, s, "abcd")
		wire += f.WireLen()
		wantErr(t, "Push", r.Push(f), nil)
		if r.Pop() != nil {
			t.Fatalf("Pop returned a frame before 1 and 2 came")
		}
	}
	if r.Held() != wire || wire != 3*(HeaderLen+SeqLen+4) {
		t.Fatalf("Held %d, want %d (WireLen of the three)", r.Held(), wire)
	}
	if r.Received() != 0 {
		t.Fatalf("Received %d with nothing delivered", r.Received())
	}
	wantErr(t, "Push 2", r.Push(seqFrame(t, 2, "two")), nil)
	if r.Pop() != nil {
		t.Fatal("Pop returned a frame before 1 came")
	}
	wantErr(t, "Push 1", r.Push(seqFrame(t, 1, "one")), nil)
	seqs, tags := popSeqs(r)
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5}) || tags[0] != "one" || tags[1] != "two" || tags[2] != "abcd" {
		t.Fatalf("popped %v %q, want 1..5", seqs, tags)
	}
	if r.Held() != 0 || r.Received() != 5 {
		t.Fatalf("Held %d Received %d, want 0 and 5", r.Held(), r.Received())
	}
}

func TestReorderDuplicates(t *testing.T) {
	const pop = math.MaxUint64 // in pushes: pop every frame in order
	tests := []struct {
		name   string
		pushes []uint64
		want   []uint64 // everything popped, in order
		held   int      // frames held at the end
	}{
		{name: "already delivered", pushes: []uint64{1, 2, pop, 1, 2, pop}, want: []uint64{1, 2}},
		{name: "already delivered long ago", pushes: []uint64{1, pop, 2, pop, 3, pop, 1, 2}, want: []uint64{1, 2, 3}},
		{name: "duplicate of the ready one", pushes: []uint64{1, 1, 1}, want: []uint64{1}},
		{name: "duplicate of a held one", pushes: []uint64{3, 3, 2, 3, 2}, held: 2},
		{name: "duplicate of a held one, then delivered", pushes: []uint64{3, 3, 1, 3, 2, pop, 3, 2, 1}, want: []uint64{1, 2, 3}},
		{name: "held one becomes next", pushes: []uint64{1, pop, 3, 2, pop, 3}, want: []uint64{1, 2, 3}},
		{name: "late copies", pushes: []uint64{2, pop, 1, pop, 2, pop, 1}, want: []uint64{1, 2}},
		{name: "seq 0 is never next", pushes: []uint64{0, 0, pop}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			start := PoolOutstanding()
			r := NewReorder(DefaultReorder)
			var got []uint64
			for _, s := range append(slices.Clone(tc.pushes), pop) {
				if s == pop {
					seqs, _ := popSeqs(r)
					got = append(got, seqs...)
					continue
				}
				wantErr(t, "Push", r.Push(seqFrame(t, s, "x")), nil)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("popped %v, want %v", got, tc.want)
			}
			if want := tc.held * (HeaderLen + SeqLen + 1); r.Held() != want {
				t.Fatalf("Held %d, want %d (%d frames)", r.Held(), want, tc.held)
			}
			if d := PoolOutstanding() - start; d != int64(tc.held) {
				t.Fatalf("%d buffers out, want %d: a copy was kept", d, tc.held)
			}
			if r.Received() != uint64(len(tc.want)) {
				t.Fatalf("Received %d, want %d", r.Received(), len(tc.want))
			}
			r.Drop()
		})
	}
}

// TestReorderCopyOfHeldNext: 2 and 3 wait; 1 comes; Pop delivers 1 and
// 2 one at a time, so 3 is next and held; a copy of 3 arrives before the
// next Pop. It is a copy of a frame held: it must be released, 3 delivered
// once, and nothing left held.
func TestReorderCopyOfHeldNext(t *testing.T) {
	checkPool(t)
	start := PoolOutstanding()
	r := NewReorder(DefaultReorder)
	for _, s := range []uint64{3, 2, 1} {
		wantErr(t, "Push", r.Push(seqFrame(t, s, "x")), nil)
	}
	for want := uint64(1); want <= 2; want++ {
		f := r.Pop()
		if f == nil || f.Seq != want {
			t.Fatalf("Pop = %v, want frame %d", f, want)
		}
		f.Release()
	}
	wantErr(t, "Push copy of 3", r.Push(seqFrame(t, 3, "copy")), nil)
	seqs, tags := popSeqs(r)
	if !slices.Equal(seqs, []uint64{3}) {
		t.Fatalf("popped %v, want [3]", seqs)
	}
	if r.Held() != 0 || r.Received() != 3 {
		t.Fatalf("Held %d Received %d, want 0 and 3 (tag %q)", r.Held(), r.Received(), tags)
	}
	if got := PoolOutstanding(); got != start {
		t.Fatalf("%d buffers outstanding with nothing held, want %d", got, start)
	}
	r.Drop()
}

func TestReorderLimit(t *testing.T) {
	checkPool(t)
	one := HeaderLen + SeqLen + 10 // WireLen of each frame here
	r := NewReorder(3 * one)
	payload := "0123456789"
	for _, s := range []uint64{2, 3, 4} { // exactly at the limit
		wantErr(t, "Push", r.Push(seqFrame(t, s, payload)), nil)
	}
	if r.Held() != 3*one {
		t.Fatalf("Held %d, want %d", r.Held(), 3*one)
	}
	start := PoolOutstanding()
	err := r.Push(seqFrame(t, 5, payload))
	wantErr(t, "Push past the limit", err, ErrFlowControl)
	wantErr(t, "Push past the limit", err, ErrProtocol)
	if got := PoolOutstanding(); got != start {
		t.Fatalf("the refused frame was not released: %d outstanding, want %d", got, start)
	}
	if r.Held() != 3*one || r.Received() != 0 {
		t.Fatalf("after the refusal: Held %d Received %d, want %d and 0", r.Held(), r.Received(), 3*one)
	}
	// No room is left at all: even an empty frame is refused.
	wantErr(t, "empty frame past the limit", r.Push(seqFrame(t, 6, "")), ErrFlowControl)
	// Copies of held frames are not counted against the limit.
	wantErr(t, "copy of a held frame", r.Push(seqFrame(t, 3, payload)), nil)
	// The next one in order is never refused: it is not held.
	wantErr(t, "Push 1", r.Push(seqFrame(t, 1, payload)), nil)
	seqs, _ := popSeqs(r)
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4}) {
		t.Fatalf("popped %v, want 1..4", seqs)
	}
	if r.Held() != 0 || r.Received() != 4 {
		t.Fatalf("Held %d Received %d, want 0 and 4", r.Held(), r.Received())
	}
	// One byte short of room is refused too.
	tight := NewReorder(2*one - 1)
	wantErr(t, "Push 2", tight.Push(seqFrame(t, 2, payload)), nil)
	wantErr(t, "Push 3, one byte past the limit", tight.Push(seqFrame(t, 3, payload)), ErrFlowControl)
	if tight.Held() != one {
		t.Fatalf("Held %d, want %d", tight.Held(), one)
	}
	tight.Drop()
	// With room again, 5 is taken back.
	wantErr(t, "Push 6", r.Push(seqFrame(t, 6, payload)), nil)
	wantErr(t, "Push 5", r.Push(seqFrame(t, 5, payload)), nil)
	if seqs, _ := popSeqs(r); !slices.Equal(seqs, []uint64{5, 6}) {
		t.Fatalf("popped %v, want [5 6]", seqs)
	}
}

func TestReorderDrop(t *testing.T) {
	checkPool(t)
	start := PoolOutstanding()
	r := NewReorder(DefaultReorder)
	for _, s := range []uint64{1, 5, 3, 9, 7} {
		wantErr(t, "Push", r.Push(seqFrame(t, s, "held")), nil)
	}
	if got := PoolOutstanding(); got != start+5 {
		t.Fatalf("%d outstanding, want %d", got, start+5)
	}
	r.Drop()
	if got := PoolOutstanding(); got != start {
		t.Fatalf("Drop left %d buffers out", got-start)
	}
	if r.Held() != 0 || r.Pop() != nil {
		t.Fatalf("after Drop: Held %d or a frame to pop", r.Held())
	}
	r.Drop() // twice: harmless
	if got := PoolOutstanding(); got != start {
		t.Fatalf("a second Drop returned buffers again (%d, want %d)", got, start)
	}
}

// TestReorderPermutations pushes random permutations of 1..N with random
// copies mixed in, popping a random number of frames after each push (all
// of them, sometimes none), and checks 1..N come out once each, in order,
// with nothing held and no buffer out at the end.
func TestReorderPermutations(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		n := 1 + rng.IntN(60)
		order := make([]uint64, 0, 2*n)
		for _, i := range rng.Perm(n) {
			order = append(order, uint64(i+1))
		}
		for range rng.IntN(n + 1) {
			order = slices.Insert(order, rng.IntN(len(order)+1), uint64(1+rng.IntN(n)))
		}
		popAllAfter := seed%3 == 0

		start := PoolOutstanding()
		r := NewReorder(DefaultReorder)
		var got []uint64
		pop := func(k int) {
			for ; k > 0; k-- {
				f := r.Pop()
				if f == nil {
					return
				}
				if string(f.Bytes()) != tagFor(f.Seq) {
					t.Fatalf("seed %d: frame %d carries %q", seed, f.Seq, f.Bytes())
				}
				got = append(got, f.Seq)
				f.Release()
			}
		}
		for _, s := range order {
			if err := r.Push(seqFrame(t, s, tagFor(s))); err != nil {
				t.Fatalf("seed %d: Push %d: %v", seed, s, err)
			}
			if popAllAfter {
				pop(math.MaxInt)
			} else {
				pop(rng.IntN(3))
			}
		}
		pop(math.MaxInt)
		want := make([]uint64, n)
		for i := range want {
			want[i] = uint64(i + 1)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: pushed %v, popped %v", seed, order, got)
		}
		if r.Held() != 0 || r.Received() != uint64(n) {
			t.Fatalf("seed %d: pushed %v: Held %d Received %d, want 0 and %d", seed, order, r.Held(), r.Received(), n)
		}
		if d := PoolOutstanding() - start; d != 0 {
			t.Fatalf("seed %d: pushed %v: %d buffers out with everything delivered", seed, order, d)
		}
		r.Drop()
	}
}

func tagFor(seq uint64) string { return string(binary.BigEndian.AppendUint64(nil, seq)) }
