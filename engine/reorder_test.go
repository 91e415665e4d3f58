package engine

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

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
