package engine

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// orderedFrame is a frame of stream numbered seq that follows the frame after
// back (0: link order).
func orderedFrame(tb testing.TB, stream uint32, seq uint64, after uint32) *Frame {
	f := dataFrame(tb, TypeData, stream, "x")
	f.Seq, f.After = seq, after
	return f
}

// deliveredNow returns the numbers of the frames Pop gives now, releasing them.
func deliveredNow(r *Reorder) []uint64 {
	var got []uint64
	for f := r.Pop(); f != nil; f = r.Pop() {
		got = append(got, f.Seq)
		f.Release()
	}
	return got
}

// TestReorderStreamOrder: frames are delivered once what they follow has
// been, in link order or in their stream's; Received stays the number
// below which everything is delivered; copies are dropped wherever the
// original went.
func TestReorderStreamOrder(t *testing.T) {
	type push struct {
		stream uint32
		seq    uint64
		after  uint32
		want   []uint64 // delivered by this push
	}
	cases := []struct {
		name     string
		pushes   []push
		received uint64 // at the end
		held     int    // frames still held at the end
	}{
		{"link order waits for the gap", []push{
			{1, 2, 0, nil}, {1, 3, 0, nil}, {1, 1, 0, []uint64{1, 2, 3}},
		}, 3, 0},
		{"another stream's frame goes past the gap", []push{
			{1, 2, 1, nil},            // stream 1 follows 1, not here yet
			{3, 3, 3, []uint64{3}},    // stream 3 follows nothing: at once
			{1, 1, 1, []uint64{1, 2}}, // the gap fills: stream 1 in its order
		}, 3, 0},
		{"a chain is released in its order", []push{
			{5, 4, 1, nil}, {5, 3, 1, nil}, {5, 2, 1, nil}, {5, 1, 1, []uint64{1, 2, 3, 4}},
		}, 4, 0},
		{"a chain ahead of a gap", []push{
			{5, 4, 1, nil}, {5, 3, 2, nil}, // 3 follows 1, which has not come
		}, 0, 2},
		{"link order after frames delivered ahead", []push{
			{3, 2, 2, []uint64{2}}, // ahead of 1
			{0, 3, 0, nil},         // stream 0 keeps link order: waits for 1
			{1, 1, 1, []uint64{1, 3}},
		}, 3, 0},
		{"copies of frames delivered ahead are dropped", []push{
			{3, 2, 2, []uint64{2}}, {3, 2, 2, nil}, {1, 1, 1, []uint64{1}}, {3, 2, 2, nil}, {1, 1, 1, nil},
		}, 2, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReorder(1 << 20)
			defer r.Drop()
			for i, p := range tc.pushes {
				if err := r.Push(orderedFrame(t, p.stream, p.seq, p.after)); err != nil {
					t.Fatalf("push %d: %v", i, err)
				}
				if got := deliveredNow(r); !slices.Equal(got, p.want) {
					t.Fatalf("push %d (frame %d after %d): delivered %v, want %v", i, p.seq, p.after, got, p.want)
				}
			}
			probe := orderedFrame(t, 1, 1, 1)
			want := tc.held * probe.WireLen()
			probe.Release()
			if r.Received() != tc.received || r.Held() != want {
				t.Fatalf("received %d, held %d bytes; want %d and %d", r.Received(), r.Held(), tc.received, want)
			}
		})
	}
}

// TestReorderHeldLimit: frames held and frames delivered ahead of the gap
// both count against the limit (a peer that never fills the gap cannot
// grow what is remembered), and both stop counting once it fills.
func TestReorderHeldLimit(t *testing.T) {
	checkPool(t)
	probe := orderedFrame(t, 1, 2, 1)
	one := probe.WireLen()
	probe.Release()
	r := NewReorder(3 * one)
	defer r.Drop()
	wantErr(t, "frame 2, delivered ahead", r.Push(orderedFrame(t, 2, 2, 2)), nil)
	wantErr(t, "frame 3, delivered ahead", r.Push(orderedFrame(t, 3, 3, 3)), nil)
	wantErr(t, "frame 4, held (follows 1)", r.Push(orderedFrame(t, 1, 4, 3)), nil)
	if got := deliveredNow(r); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("delivered %v, want [2 3]", got)
	}
	wantErr(t, "frame 5, past the limit", r.Push(orderedFrame(t, 5, 5, 5)), ErrFlowControl)
	wantErr(t, "frame 1, the gap", r.Push(orderedFrame(t, 1, 1, 1)), nil)
	if got := deliveredNow(r); !slices.Equal(got, []uint64{1, 4}) || r.Received() != 4 || r.Held() != 0 {
		t.Fatalf("delivered %v, received %d, held %d; want [1 4], 4, 0", got, r.Received(), r.Held())
	}
	for seq := uint64(6); seq <= 8; seq++ { // room again
		wantErr(t, "a frame after the gap filled", r.Push(orderedFrame(t, uint32(seq), seq, uint32(seq))), nil)
	}
}

// TestOrdererRules: what each frame a sender numbers is made to follow.
func TestOrdererRules(t *testing.T) {
	u := NewUnacked()
	u.StreamOrder()
	defer u.Drop()
	type step struct {
		t      Type
		stream uint32
		follow uint64 // the frame it follows; 0: nothing; ^0: link order
	}
	const linkOrder = ^uint64(0)
	steps := []step{
		{TypeOpen, 1, 0},         // 1: the first OPEN follows nothing
		{TypeData, 1, 1},         // 2
		{TypeOpen, 3, 1},         // 3: OPENs in id order
		{TypeBind, 0, linkOrder}, // 4: stream 0 keeps link order
		{TypeData, 3, 3},         // 5
		{TypeData, 1, 2},         // 6
		{TypeFin, 1, linkOrder},  // 7: an end keeps link order
		{TypeOpen, 5, 7},         // 8: after the end, not the OPEN before it
		{TypeCredit, 1, 7},       // 9: stream 1 after its FIN
		{TypeRst, 3, linkOrder},  // 10
		{TypeOpenOK, 3, 0},       // 11: stream 3 forgotten at its RST
		{TypeOpen, 7, 10},        // 12: after the RST, the later of the two
	}
	for i, s := range steps {
		f := &Frame{Type: s.t, Stream: s.stream}
		u.Number(f, 0)
		var follow uint64
		switch {
		case f.After == 0:
			follow = linkOrder
		default:
			follow = f.Seq - uint64(f.After)
		}
		if f.Seq != uint64(i+1) || follow != s.follow {
			t.Fatalf("frame %d (%v of stream %d): follows %d (after %d), want %d", f.Seq, s.t, s.stream, follow, f.After, s.follow)
		}
	}
}

// TestReadAfter: a frame naming the frame it follows reads back only on
// a link that agreed stream order, and only with a distance in range.
func TestReadAfter(t *testing.T) {
	frame := func(seq uint64, after uint32) []byte {
		f := dataFrame(t, TypeData, 3, "abc")
		f.Seq, f.After = seq, after
		return encodeFrame(t, f, Version)
	}
	good := frame(9, 4)
	bad := func(b []byte, at int, v byte) []byte {
		b = append([]byte(nil), b...)
		b[at] = v
		return b
	}
	cases := []struct {
		name        string
		wire        []byte
		streamOrder bool
		want        error
	}{
		{"agreed", good, true, nil},
		{"not agreed", good, false, ErrMalformed},
		{"after 0", bad(good, HeaderLen+SeqLen+3, 0), true, ErrMalformed},
		{"after past seq", frame(3, 4), true, ErrMalformed},
		{"after cut short", good[:HeaderLen+SeqLen+2], true, ErrTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(bytes.NewReader(tc.wire), 64)
			r.Version, r.Seq, r.StreamOrder = Version, true, tc.streamOrder
			f, err := r.ReadFrame()
			wantErr(t, "ReadFrame", err, tc.want)
			if err != nil {
				return
			}
			defer f.Release()
			if f.Seq != 9 || f.After != 4 || string(f.Bytes()) != "abc" || f.WireLen() != len(tc.wire) {
				t.Fatalf("read %v seq %d after %d (%d bytes), want seq 9 after 4 of %d bytes", f, f.Seq, f.After, f.WireLen(), len(tc.wire))
			}
		})
	}
}

// FuzzReadOrdered: on a link with sequencing and stream order, whatever
// the reader accepts re-encodes to the bytes it read.
func FuzzReadOrdered(f *testing.F) {
	for _, fr := range []*Frame{orderedFrame(f, 3, 9, 4), orderedFrame(f, 3, 2, 0), orderedFrame(f, 1, 1, 1)} {
		f.Add(encodeFrame(f, fr, Version))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPool(t)
		r := NewReader(bytes.NewReader(data), 16)
		r.Version, r.Seq, r.StreamOrder = Version, true, true
		off := 0
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				if off < len(data) && !errors.Is(err, ErrProtocol) || off == len(data) && err != io.EOF {
					t.Fatalf("%d bytes left: %v", len(data)-off, err)
				}
				return
			}
			n := fr.WireLen()
			re := AppendFrame(nil, fr, data[off])
			fr.Release()
			if off+n > len(data) || !bytes.Equal(re, data[off:off+n]) {
				t.Fatalf("re-encoded % x, read from % x", re, data[off:min(off+n, len(data))])
			}
			off += n
		}
	})
}

// FuzzReorder: whatever a peer sends (numbers, afters, copies, in any
// order), nothing is delivered twice, nothing before what it follows, and
// the limit holds.
func FuzzReorder(f *testing.F) {
	f.Add([]byte{2, 1, 1, 0, 3, 3, 2, 1})
	f.Add([]byte{5, 0, 4, 1, 3, 1, 2, 1, 1, 0})
	f.Fuzz(func(t *testing.T, script []byte) {
		checkPool(t)
		r := NewReorder(8 * 25)
		defer r.Drop()
		delivered := map[uint64]bool{}
		afters := map[uint64]uint32{}
		for i := 0; i+1 < len(script); i += 2 {
			seq := uint64(script[i]%32) + 1
			after := uint32(script[i+1]) % uint32(seq+1)
			if a, ok := afters[seq]; ok {
				after = a // a copy is the same frame
			}
			afters[seq] = after
			if err := r.Push(orderedFrame(t, 1, seq, after)); err != nil && !errors.Is(err, ErrFlowControl) {
				t.Fatalf("push %d: %v", seq, err)
			}
			for _, s := range deliveredNow(r) {
				switch a := afters[s]; {
				case delivered[s]:
					t.Fatalf("frame %d delivered twice", s)
				case a == 0:
					for k := uint64(1); k < s; k++ {
						if !delivered[k] {
							t.Fatalf("frame %d (link order) delivered before %d", s, k)
						}
					}
				case s-uint64(a) > 0 && !delivered[s-uint64(a)]:
					t.Fatalf("frame %d delivered before %d, which it follows", s, s-uint64(a))
				}
				delivered[s] = true
			}
			if r.Held() > 8*25 {
				t.Fatalf("holding %d bytes past the limit", r.Held())
			}
		}
	})
}
