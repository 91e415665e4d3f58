package engine

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// numbered gives n frames to u, frame i (from 0) on carrier carriers[i %
// len(carriers)] with a payload of i%7 bytes, and returns them.
func numbered(tb testing.TB, u *Unacked, n int, carriers ...int) []*Frame {
	tb.Helper()
	fs := make([]*Frame, n)
	for i := range fs {
		fs[i] = dataFrame(tb, TypeData, 1, "abcdefg"[:i%7])
		u.Number(fs[i], carriers[i%len(carriers)])
	}
	return fs
}

// withPayload is how many of fs have a payload (a pooled buffer).
func withPayload(fs []*Frame) int64 {
	n := int64(0)
	for _, f := range fs {
		if f.Payload != nil {
			n++
		}
	}
	return n
}

func TestUnackedNumbering(t *testing.T) {
	checkPool(t)
	u := NewUnacked()
	if u.Next() != 1 || u.Acked() != 0 || u.Len() != 0 || u.Bytes() != 0 {
		t.Fatalf("new Unacked: next %d acked %d len %d bytes %d", u.Next(), u.Acked(), u.Len(), u.Bytes())
	}
	if f, c := u.Get(1); f != nil || c != 0 {
		t.Fatalf("Get(1) on an empty Unacked = %v, %d", f, c)
	}
	bytes := 0
	for i := range 10 {
		f := dataFrame(t, TypeData, 3, "abcdefghij"[:i])
		u.Number(f, i%2)
		if f.Seq != uint64(i+1) {
			t.Fatalf("frame %d numbered %d, want %d", i, f.Seq, i+1)
		}
		bytes += HeaderLen + SeqLen + i
		if u.Len() != i+1 || u.Bytes() != bytes || u.Next() != uint64(i+2) {
			t.Fatalf("after %d frames: len %d bytes %d next %d, want %d %d %d", i+1, u.Len(), u.Bytes(), u.Next(), i+1, bytes, i+2)
		}
	}
	u.Drop()
}

func TestUnackedAck(t *testing.T) {
	checkPool(t)
	start := PoolOutstanding()
	u := NewUnacked()
	fs := numbered(t, u, 10, 7)
	total := 0
	for _, f := range fs {
		total += f.WireLen()
	}
	if got := PoolOutstanding() - start; got != withPayload(fs) || got != 8 { // frames 1 and 8 have none
		t.Fatalf("%d buffers out, want 8", got)
	}

	wantErr(t, "Ack(0)", u.Ack(0), nil)
	if u.Len() != 10 || u.Acked() != 0 {
		t.Fatalf("Ack(0) changed something: len %d acked %d", u.Len(), u.Acked())
	}

	firstFour := fs[0].WireLen() + fs[1].WireLen() + fs[2].WireLen() + fs[3].WireLen()
	wantErr(t, "Ack(4)", u.Ack(4), nil)
	if u.Len() != 6 || u.Acked() != 4 || u.Bytes() != total-firstFour {
		t.Fatalf("after Ack(4): len %d acked %d bytes %d", u.Len(), u.Acked(), u.Bytes())
	}
	if got := PoolOutstanding() - start; got != withPayload(fs[4:]) {
		t.Fatalf("after Ack(4): %d buffers out, want %d (frames 5..10)", got, withPayload(fs[4:]))
	}
	for i, f := range fs {
		if kept := i >= 4 && i%7 != 0; kept != (f.Payload != nil) {
			t.Fatalf("frame %d: payload %v after Ack(4)", i+1, f.Payload != nil)
		}
	}
	if f, _ := u.Get(5); f != fs[4] || string(f.Bytes()) != "abcd" {
		t.Fatalf("Get(5) = %v, want frame 5 intact", f)
	}

	// An old ACK, and the same one again, are ignored.
	for _, old := range []uint64{0, 2, 4} {
		wantErr(t, "old Ack", u.Ack(old), nil)
		if u.Len() != 6 || u.Acked() != 4 || PoolOutstanding()-start != withPayload(fs[4:]) {
			t.Fatalf("old Ack(%d) changed something: len %d acked %d", old, u.Len(), u.Acked())
		}
	}

	// An ACK of a frame never sent is a protocol error and changes nothing.
	for _, bad := range []uint64{11, 12, 1 << 62} {
		err := u.Ack(bad)
		wantErr(t, "Ack of a frame never sent", err, ErrMalformed)
		wantErr(t, "Ack of a frame never sent", err, ErrProtocol)
		if u.Len() != 6 || u.Acked() != 4 || PoolOutstanding()-start != withPayload(fs[4:]) {
			t.Fatalf("refused Ack(%d) changed something: len %d acked %d", bad, u.Len(), u.Acked())
		}
	}

	wantErr(t, "Ack(10)", u.Ack(10), nil)
	if u.Len() != 0 || u.Bytes() != 0 || u.Acked() != 10 || PoolOutstanding() != start {
		t.Fatalf("after acking everything: len %d bytes %d acked %d out %d", u.Len(), u.Bytes(), u.Acked(), PoolOutstanding()-start)
	}
	// Numbering goes on.
	f := dataFrame(t, TypeData, 1, "z")
	u.Number(f, 0)
	if f.Seq != 11 {
		t.Fatalf("next frame numbered %d, want 11", f.Seq)
	}
	u.Drop()
}

// TestUnackedAckWithWriter: a frame retained by a carrier writer keeps its
// payload past the ACK until the writer releases it, and goes back once.
func TestUnackedAckWithWriter(t *testing.T) {
	checkPool(t)
	start := PoolOutstanding()
	u := NewUnacked()
	f := dataFrame(t, TypeData, 1, "in flight")
	u.Number(f, 1)
	f.Retain() // the writer's share
	wantErr(t, "Ack", u.Ack(1), nil)
	if f.Payload == nil || string(f.Bytes()) != "in flight" || PoolOutstanding() != start+1 {
		t.Fatal("the ACK took the payload from under the writer")
	}
	f.Release()
	if f.Payload != nil || PoolOutstanding() != start {
		t.Fatal("the writer's release did not return the payload")
	}
}

func TestUnackedGetSentOnOn(t *testing.T) {
	checkPool(t)
	u := NewUnacked()
	fs := numbered(t, u, 9, 1, 2, 3) // 1,4,7 on 1; 2,5,8 on 2; 3,6,9 on 3
	for i, f := range fs {
		g, c := u.Get(uint64(i + 1))
		if g != f || c != i%3+1 || g.Seq != uint64(i+1) {
			t.Fatalf("Get(%d) = %v (seq %d) on %d, want frame %d on %d", i+1, g, g.Seq, c, i+1, i%3+1)
		}
	}
	for _, seq := range []uint64{0, 10, 100} {
		if f, c := u.Get(seq); f != nil || c != 0 {
			t.Fatalf("Get(%d) = %v, %d, want nil", seq, f, c)
		}
	}
	if got := u.On(nil, 2); !slices.Equal(got, []uint64{2, 5, 8}) {
		t.Fatalf("On(2) = %v", got)
	}
	if got := u.On([]uint64{99}, 1); !slices.Equal(got, []uint64{99, 1, 4, 7}) {
		t.Fatalf("On(1) appended to [99] = %v", got)
	}
	if got := u.On(nil, 4); len(got) != 0 {
		t.Fatalf("On(4), a carrier never used, = %v", got)
	}

	// Carrier 2 dies: its frames go out again on 3.
	for _, seq := range u.On(nil, 2) {
		u.SentOn(seq, 3)
	}
	if got := u.On(nil, 2); len(got) != 0 {
		t.Fatalf("On(2) after resending = %v", got)
	}
	if got := u.On(nil, 3); !slices.Equal(got, []uint64{2, 3, 5, 6, 8, 9}) {
		t.Fatalf("On(3) after resending = %v", got)
	}
	if _, c := u.Get(5); c != 3 {
		t.Fatalf("Get(5) carrier %d, want 3", c)
	}

	wantErr(t, "Ack(4)", u.Ack(4), nil)
	if f, c := u.Get(4); f != nil || c != 0 {
		t.Fatalf("Get(4) after its ACK = %v, %d", f, c)
	}
	u.SentOn(4, 1)  // acknowledged: ignored
	u.SentOn(10, 1) // never sent: ignored
	u.SentOn(0, 1)  // never a frame: ignored
	if got := u.On(nil, 1); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("On(1) after Ack(4) = %v, want [7]", got)
	}
	if got := u.On(nil, 3); !slices.Equal(got, []uint64{5, 6, 8, 9}) {
		t.Fatalf("On(3) after Ack(4) = %v", got)
	}
	u.Drop()
}

// TestUnackedRingGrowth numbers past the first 64 entries with the head
// moved, so the ring wraps around before it grows, and checks every frame
// is still where Get says.
func TestUnackedRingGrowth(t *testing.T) {
	checkPool(t)
	start := PoolOutstanding()
	u := NewUnacked()
	fs := numbered(t, u, 50, 1, 2)
	wantErr(t, "Ack(40)", u.Ack(40), nil) // head at 40: the next 54 entries wrap
	fs = append(fs, numbered(t, u, 200, 3, 1, 2)...)
	for i, f := range fs {
		if f.Seq != uint64(i+1) {
			t.Fatalf("frame %d numbered %d", i+1, f.Seq)
		}
	}
	check := func(from uint64) {
		t.Helper()
		wantBytes := 0
		var on [4][]uint64
		for seq := from; seq <= uint64(len(fs)); seq++ {
			f, c := u.Get(seq)
			if f != fs[seq-1] || f.Seq != seq {
				t.Fatalf("Get(%d) = %v seq %d, want frame %d", seq, f, f.Seq, seq)
			}
			wantBytes += f.WireLen()
			on[c] = append(on[c], seq)
		}
		if u.Len() != len(fs)-int(from)+1 || u.Bytes() != wantBytes {
			t.Fatalf("len %d bytes %d, want %d and %d", u.Len(), u.Bytes(), len(fs)-int(from)+1, wantBytes)
		}
		for c := 1; c <= 3; c++ {
			if got := u.On(nil, c); !slices.Equal(got, on[c]) {
				t.Fatalf("On(%d) = %v, want %v", c, got, on[c])
			}
		}
	}
	check(41)
	if len(u.ring) < 210 {
		t.Fatalf("ring of %d entries holds %d frames", len(u.ring), u.Len())
	}
	wantErr(t, "Ack(200)", u.Ack(200), nil)
	check(201)
	if got := PoolOutstanding() - start; got != withPayload(fs[200:]) {
		t.Fatalf("%d buffers out, want %d (frames 201..250)", got, withPayload(fs[200:]))
	}
	u.Drop()
	if PoolOutstanding() != start {
		t.Fatalf("Drop left %d buffers out", PoolOutstanding()-start)
	}
}

// TestUnackedModel runs random Number, Ack, SentOn, Get and On against a
// plain map and checks they always agree; the ring wraps and grows many
// times.
func TestUnackedModel(t *testing.T) {
	checkPool(t)
	for seed := range uint64(20) {
		start := PoolOutstanding()
		rng := rand.New(rand.NewPCG(seed, 1))
		u := NewUnacked()
		type entry struct {
			f       *Frame
			carrier int
		}
		model := map[uint64]*entry{}
		var next, acked uint64 = 1, 0
		for step := range 3000 {
			switch op := rng.IntN(10); {
			case op < 5:
				f := dataFrame(t, TypeData, 1, "abcdefgh"[:rng.IntN(9)])
				c := rng.IntN(4)
				u.Number(f, c)
				model[next] = &entry{f, c}
				next++
			case op < 7:
				if next-1 > acked {
					to := acked + 1 + uint64(rng.IntN(int(next-1-acked)))
					wantErr(t, "Ack", u.Ack(to), nil)
					for ; acked < to; acked++ {
						delete(model, acked+1)
					}
				}
			case op < 8:
				if err := u.Ack(next + uint64(rng.IntN(3))); err == nil {
					t.Fatalf("seed %d step %d: Ack past %d accepted", seed, step, next-1)
				}
			default:
				if len(model) > 0 {
					seq := acked + 1 + uint64(rng.IntN(int(next-1-acked)))
					c := rng.IntN(4)
					u.SentOn(seq, c)
					model[seq].carrier = c
				}
			}
			bytes := 0
			for seq := acked + 1; seq < next; seq++ {
				e := model[seq]
				f, c := u.Get(seq)
				if f != e.f || c != e.carrier {
					t.Fatalf("seed %d step %d: Get(%d) = %p on %d, want %p on %d", seed, step, seq, f, c, e.f, e.carrier)
				}
				bytes += e.f.WireLen()
			}
			if u.Len() != len(model) || u.Bytes() != bytes || u.Acked() != acked || u.Next() != next {
				t.Fatalf("seed %d step %d: len %d bytes %d acked %d next %d, want %d %d %d %d",
					seed, step, u.Len(), u.Bytes(), u.Acked(), u.Next(), len(model), bytes, acked, next)
			}
			c := rng.IntN(4)
			var want []uint64
			for seq := acked + 1; seq < next; seq++ {
				if model[seq].carrier == c {
					want = append(want, seq)
				}
			}
			if got := u.On(nil, c); !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: On(%d) = %v, want %v", seed, step, c, got, want)
			}
		}
		u.Drop()
		if d := PoolOutstanding() - start; d != 0 {
			t.Fatalf("seed %d: %d buffers out after Drop", seed, d)
		}
	}
}

func TestUnackedDrop(t *testing.T) {
	checkPool(t)
	start := PoolOutstanding()
	u := NewUnacked()
	numbered(t, u, 100, 1, 2)
	wantErr(t, "Ack(30)", u.Ack(30), nil)
	u.Drop()
	if u.Len() != 0 || u.Bytes() != 0 || u.Acked() != 100 || u.Next() != 101 {
		t.Fatalf("after Drop: len %d bytes %d acked %d next %d", u.Len(), u.Bytes(), u.Acked(), u.Next())
	}
	if d := PoolOutstanding() - start; d != 0 {
		t.Fatalf("Drop left %d buffers out", d)
	}
	if f, _ := u.Get(50); f != nil {
		t.Fatalf("Get(50) after Drop = %v", f)
	}
	if got := u.On(nil, 1); len(got) != 0 {
		t.Fatalf("On(1) after Drop = %v", got)
	}
	// A late ACK of what was dropped is old news; numbering goes on.
	wantErr(t, "Ack(60) after Drop", u.Ack(60), nil)
	wantErr(t, "Ack(101) after Drop", u.Ack(101), ErrMalformed)
	f := dataFrame(t, TypeData, 1, "after")
	u.Number(f, 1)
	if f.Seq != 101 || u.Len() != 1 {
		t.Fatalf("after Drop: numbered %d, len %d", f.Seq, u.Len())
	}
	if g, c := u.Get(101); g != f || c != 1 {
		t.Fatalf("Get(101) = %v on %d", g, c)
	}
	wantErr(t, "Ack(101)", u.Ack(101), nil)
	if d := PoolOutstanding() - start; d != 0 || f.Payload != nil {
		t.Fatalf("%d buffers out after acking everything", d)
	}
	u.Drop() // empty: harmless
}
