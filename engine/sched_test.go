package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// label names a frame as "TYPE/stream/tag" so scheduling orders can be
// compared as strings.
func label(f *Frame) string {
	return fmt.Sprintf("%v/%d/%s", f.Type, f.Stream, f.Bytes())
}

// popAll pops until the queue is empty, checking Len and Bytes on the way,
// and returns the labels in order; it releases the frames.
func popAll(tb testing.TB, q *Queue) []string {
	tb.Helper()
	var out []string
	for {
		n, b := q.Len(), q.Bytes()
		f := q.Pop()
		if f == nil {
			if q.Len() != 0 || q.Bytes() != 0 {
				tb.Fatalf("empty queue has Len %d Bytes %d", q.Len(), q.Bytes())
			}
			return out
		}
		if q.Len() != n-1 || q.Bytes() != b-f.WireLen() {
			tb.Fatalf("after popping %v: Len %d Bytes %d, want %d %d", f, q.Len(), q.Bytes(), n-1, b-f.WireLen())
		}
		out = append(out, label(f))
		f.Release()
	}
}

// push pushes frames described as "TYPE/stream/tag" (tag optional).
func push(tb testing.TB, q *Queue, specs ...string) {
	tb.Helper()
	types := map[string]Type{}
	for ty := TypeHello; ty <= typeMax; ty++ {
		types[ty.String()] = ty
	}
	for _, s := range specs {
		var name, tag string
		var id uint32
		parts := strings.SplitN(s, "/", 3)
		name = parts[0]
		fmt.Sscan(parts[1], &id)
		if len(parts) == 3 {
			tag = parts[2]
		}
		ty, ok := types[name]
		if !ok {
			tb.Fatalf("bad spec %q", s)
		}
		n, b := q.Len(), q.Bytes()
		f := dataFrame(tb, ty, id, tag)
		q.Push(f)
		if q.Len() != n+1 || q.Bytes() != b+f.WireLen() {
			tb.Fatalf("after pushing %v: Len %d Bytes %d", f, q.Len(), q.Bytes())
		}
	}
}

func TestQueueEmpty(t *testing.T) {
	q := NewQueue()
	for range 3 {
		if f := q.Pop(); f != nil || q.Len() != 0 || q.Bytes() != 0 {
			t.Fatalf("empty queue: %v, Len %d Bytes %d", f, q.Len(), q.Bytes())
		}
	}
	if q.Drop(1) != nil || len(q.DropAll()) != 0 {
		t.Fatal("dropping from an empty queue returned frames")
	}
}

func TestQueueOrder(t *testing.T) {
	tests := []struct {
		name string
		push []string
		want []string
	}{
		{
			name: "control first, in arrival order",
			push: []string{"DATA/1/a", "DATA/3/b", "PING/0/p", "CREDIT/1/c", "FIN/1/", "RST/5/r", "OPEN/7/o", "PONG/0/q", "GOAWAY/0/g"},
			want: []string{"PING/0/p", "CREDIT/1/c", "RST/5/r", "OPEN/7/o", "PONG/0/q", "GOAWAY/0/g", "DATA/1/a", "DATA/3/b", "FIN/1/"},
		},
		{
			name: "per-stream FIFO, FIN after DATA",
			push: []string{"DATA/1/a1", "DATA/1/a2", "DATA/1/a3", "FIN/1/", "DATA/3/b1", "FIN/3/"},
			want: []string{"DATA/1/a1", "DATA/3/b1", "DATA/1/a2", "FIN/3/", "DATA/1/a3", "FIN/1/"},
		},
		{
			name: "round robin in order of arrival",
			push: []string{"DATA/5/c1", "DATA/1/a1", "DATA/3/b1", "DATA/1/a2", "DATA/5/c2", "DATA/3/b2", "DATA/3/b3"},
			want: []string{"DATA/5/c1", "DATA/1/a1", "DATA/3/b1", "DATA/5/c2", "DATA/1/a2", "DATA/3/b2", "DATA/3/b3"},
		},
		{
			name: "OPEN with its DATA and FIN",
			push: []string{"DATA/9/first", "FIN/9/", "OPEN/9/target"},
			want: []string{"OPEN/9/target", "DATA/9/first", "FIN/9/"},
		},
		{
			name: "OPEN_OK before the accepter's DATA",
			push: []string{"DATA/2/reply", "OPEN_OK/2/"},
			want: []string{"OPEN_OK/2/", "DATA/2/reply"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			q := NewQueue()
			push(t, q, tc.push...)
			if got := popAll(t, q); !slices.Equal(got, tc.want) {
				t.Fatalf("order\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestQueueControlOvertakesData: a PONG pushed behind a backlog of DATA is
// the next frame out.
func TestQueueControlOvertakesData(t *testing.T) {
	checkPool(t)
	q := NewQueue()
	for i := range 50 {
		push(t, q, fmt.Sprintf("DATA/1/%d", i))
	}
	for range 10 {
		q.Pop().Release()
	}
	push(t, q, "PONG/0/pong")
	if f := q.Pop(); label(f) != "PONG/0/pong" {
		t.Fatalf("next frame %v, want the PONG", f)
	} else {
		f.Release()
	}
	release(q.DropAll())
}

// TestQueueFairness: a stream with 100 frames queued cannot starve another:
// they alternate while both have frames, and each keeps its own order.
func TestQueueFairness(t *testing.T) {
	checkPool(t)
	q := NewQueue()
	for i := range 100 {
		push(t, q, fmt.Sprintf("DATA/1/%d", i))
	}
	for i := range 5 {
		push(t, q, fmt.Sprintf("DATA/3/%d", i))
	}
	got := popAll(t, q)
	var want []string
	for i := range 100 {
		want = append(want, fmt.Sprintf("DATA/1/%d", i))
		if i < 5 {
			want = append(want, fmt.Sprintf("DATA/3/%d", i))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("order\n got %v\nwant %v", got, want)
	}
}

// TestQueueFairnessLateArrival: a quiet stream that gets a frame while a busy
// stream is being drained is served within one turn.
func TestQueueFairnessLateArrival(t *testing.T) {
	checkPool(t)
	q := NewQueue()
	for i := range 100 {
		push(t, q, fmt.Sprintf("DATA/1/%d", i))
	}
	next := 0 // next frame of stream 1
	popBusy := func() {
		t.Helper()
		f := q.Pop()
		if want := fmt.Sprintf("DATA/1/%d", next); label(f) != want {
			t.Fatalf("got %v, want %s", f, want)
		}
		f.Release()
		next++
	}
	for range 30 {
		popBusy()
	}
	for round := range 20 {
		push(t, q, fmt.Sprintf("DATA/3/q%d", round), fmt.Sprintf("DATA/5/r%d", round))
		// Within the next three frames both quiet streams get their turn.
		var seen []string
		for range 3 {
			f := q.Pop()
			seen = append(seen, label(f))
			if f.Stream == 1 {
				if want := fmt.Sprintf("DATA/1/%d", next); label(f) != want {
					t.Fatalf("got %v, want %s", f, want)
				}
				next++
			}
			f.Release()
		}
		for _, want := range []string{fmt.Sprintf("DATA/3/q%d", round), fmt.Sprintf("DATA/5/r%d", round)} {
			if !slices.Contains(seen, want) {
				t.Fatalf("round %d: %s not served in %v", round, want, seen)
			}
		}
	}
	for next < 100 {
		popBusy()
	}
	if f := q.Pop(); f != nil {
		t.Fatalf("left over: %v", f)
	}
}

// TestQueueFairnessManyStreams: with n streams each holding k frames, every
// round of n pops serves each stream exactly once.
func TestQueueFairnessManyStreams(t *testing.T) {
	checkPool(t)
	const n, k = 17, 40
	q := NewQueue()
	for j := range k {
		for s := range n {
			push(t, q, fmt.Sprintf("DATA/%d/%d", 2*s+1, j))
		}
	}
	for j := range k {
		seen := map[uint32]bool{}
		for range n {
			f := q.Pop()
			if seen[f.Stream] || string(f.Bytes()) != fmt.Sprint(j) {
				t.Fatalf("round %d: %v out of turn", j, label(f))
			}
			seen[f.Stream] = true
			f.Release()
		}
	}
	if q.Len() != 0 {
		t.Fatalf("Len %d at the end", q.Len())
	}
}

func TestQueueDrop(t *testing.T) {
	checkPool(t)
	q := NewQueue()
	push(t, q, "DATA/1/a1", "DATA/3/b1", "DATA/1/a2", "RST/1/r", "FIN/1/", "DATA/3/b2", "PING/0/p")
	lenBefore, bytesBefore := q.Len(), q.Bytes()
	dropped := q.Drop(1)
	var labels []string
	wire := 0
	for _, f := range dropped {
		labels = append(labels, label(f))
		wire += f.WireLen()
	}
	release(dropped)
	if want := []string{"DATA/1/a1", "DATA/1/a2", "FIN/1/"}; !slices.Equal(labels, want) {
		t.Fatalf("Drop(1) = %v, want %v", labels, want)
	}
	if q.Len() != lenBefore-3 || q.Bytes() != bytesBefore-wire {
		t.Fatalf("after Drop: Len %d Bytes %d, want %d %d", q.Len(), q.Bytes(), lenBefore-3, bytesBefore-wire)
	}
	if d := q.Drop(1); d != nil {
		t.Fatalf("second Drop(1) = %v", d)
	}
	if d := q.Drop(77); d != nil {
		t.Fatalf("Drop(77) = %v", d)
	}
	// The stream's control frames (its RST) stay; the other stream is intact.
	want := []string{"RST/1/r", "PING/0/p", "DATA/3/b1", "DATA/3/b2"}
	if got := popAll(t, q); !slices.Equal(got, want) {
		t.Fatalf("after Drop\n got %v\nwant %v", got, want)
	}
}

// TestQueueDropMidTurn drops a stream that has a turn pending in the ring.
func TestQueueDropMidTurn(t *testing.T) {
	checkPool(t)
	q := NewQueue()
	push(t, q, "DATA/1/a1", "DATA/3/b1", "DATA/5/c1", "DATA/1/a2", "DATA/3/b2", "DATA/5/c2")
	f := q.Pop() // a1
	f.Release()
	release(q.Drop(3))
	want := []string{"DATA/5/c1", "DATA/1/a2", "DATA/5/c2"}
	if got := popAll(t, q); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestQueueDropAll(t *testing.T) {
	checkPool(t)
	q := NewQueue()
	push(t, q, "DATA/1/a", "PING/0/p", "FIN/1/", "DATA/3/b", "CREDIT/5/c", "OPEN/7/o")
	q.Pop().Release() // PING
	all := q.DropAll()
	if len(all) != 5 {
		t.Fatalf("DropAll returned %d frames, want 5", len(all))
	}
	var labels []string
	for _, f := range all {
		labels = append(labels, label(f))
	}
	release(all)
	slices.Sort(labels)
	if want := []string{"CREDIT/5/c", "DATA/1/a", "DATA/3/b", "FIN/1/", "OPEN/7/o"}; !slices.Equal(labels, want) {
		t.Fatalf("DropAll = %v, want %v", labels, want)
	}
	if q.Len() != 0 || q.Bytes() != 0 || q.Pop() != nil {
		t.Fatalf("after DropAll: Len %d Bytes %d", q.Len(), q.Bytes())
	}
	// The queue works again afterwards.
	push(t, q, "DATA/9/x", "DATA/11/y", "DATA/9/z")
	if got, want := popAll(t, q), []string{"DATA/9/x", "DATA/11/y", "DATA/9/z"}; !slices.Equal(got, want) {
		t.Fatalf("after DropAll: %v, want %v", got, want)
	}
}

// TestQueueRingBounded: a stream that always has frames waiting does not
// make the turn ring grow with the number of frames sent.
func TestQueueRingBounded(t *testing.T) {
	q := NewQueue()
	q.Push(&Frame{Type: TypeData, Stream: 1})
	q.Push(&Frame{Type: TypeData, Stream: 3})
	for range 100000 {
		q.Push(&Frame{Type: TypeData, Stream: 1})
		q.Push(&Frame{Type: TypeData, Stream: 3})
		q.Pop()
		q.Pop()
	}
	if q.Len() != 2 || cap(q.ring) > 1024 {
		t.Fatalf("Len %d, ring cap %d", q.Len(), cap(q.ring))
	}
}

// TestQueueStreamBacklogBounded: the same for a stream's own frame list.
func TestQueueStreamBacklogBounded(t *testing.T) {
	q := NewQueue()
	q.Push(&Frame{Type: TypeData, Stream: 1})
	for range 100000 {
		q.Push(&Frame{Type: TypeData, Stream: 1})
		q.Pop()
	}
	if c := cap(q.streams[1].items); q.Len() != 1 || c > 1024 {
		t.Errorf("stream 1 holds %d frame in a slice of cap %d", q.Len(), c)
	}
	q = NewQueue()
	q.Push(&Frame{Type: TypePing})
	for range 100000 {
		q.Push(&Frame{Type: TypePing})
		q.Pop()
	}
	if c := cap(q.ctrl.items); q.Len() != 1 || c > 1024 {
		t.Errorf("control list holds %d frame in a slice of cap %d", q.Len(), c)
	}
}

// TestQueuePeek: Peek shows the frame Pop takes next and leaves it queued,
// control first, then the streams in turn, past dropped streams.
func TestQueuePeek(t *testing.T) {
	checkPool(t)
	q := NewQueue()
	if q.Peek() != nil {
		t.Fatal("an empty queue peeks a frame")
	}
	push(t, q, "DATA/1/a1", "DATA/3/b1", "DATA/1/a2", "DATA/5/c1", "PING/0/p")
	release(q.Drop(3))
	var got []string
	for {
		n, f := q.Len(), q.Peek()
		if f == nil {
			break
		}
		if q.Peek() != f || q.Len() != n {
			t.Fatalf("Peek took %v off the queue", f)
		}
		g := q.Pop()
		if g != f {
			t.Fatalf("peeked %v, popped %v", label(f), label(g))
		}
		got = append(got, label(g))
		g.Release()
	}
	if want := []string{"PING/0/p", "DATA/1/a1", "DATA/5/c1", "DATA/1/a2"}; !slices.Equal(got, want) {
		t.Fatalf("order\n got %v\nwant %v", got, want)
	}
}

// TestQueuePopSmall: PopSmall takes the first frame, in turn order, of at
// most the size asked, its stream's order kept and its turn given up; a
// frame behind a big one of the same stream does not overtake it.
func TestQueuePopSmall(t *testing.T) {
	big := strings.Repeat("x", 1000)
	tests := []struct {
		name  string
		push  []string
		skip  uint32
		small []string // what PopSmall(100, skip) takes, in turn, until nil
		rest  []string // what Pop then takes
	}{
		{"nothing small", []string{"DATA/1/" + big, "DATA/3/" + big}, 0, nil,
			[]string{"DATA/1/" + big, "DATA/3/" + big}},
		{"a request behind bulk", []string{"DATA/1/" + big, "DATA/1/" + big, "DATA/3/req"}, 0, []string{"DATA/3/req"},
			[]string{"DATA/1/" + big, "DATA/1/" + big}},
		{"stream order kept", []string{"DATA/1/" + big, "DATA/3/" + big, "DATA/3/s", "DATA/5/t", "FIN/5/"}, 0,
			[]string{"DATA/5/t", "FIN/5/"}, []string{"DATA/1/" + big, "DATA/3/" + big, "DATA/3/s"}},
		{"control first", []string{"DATA/1/" + big, "DATA/3/req", "CREDIT/1/c"}, 0, []string{"CREDIT/1/c", "DATA/3/req"},
			[]string{"DATA/1/" + big}},
		{"turn given up", []string{"DATA/1/" + big, "DATA/3/s1", "DATA/3/" + big, "DATA/5/" + big}, 0, []string{"DATA/3/s1"},
			[]string{"DATA/1/" + big, "DATA/5/" + big, "DATA/3/" + big}},
		{"a stream skipped", []string{"FIN/1/", "DATA/3/s", "FIN/5/"}, 1, []string{"DATA/3/s", "FIN/5/"},
			[]string{"FIN/1/"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			q := NewQueue()
			push(t, q, tc.push...)
			var small []string
			for {
				n, b := q.Len(), q.Bytes()
				f := q.PopSmall(100, tc.skip)
				if f == nil {
					break
				}
				if f.WireLen() > 100 || q.Len() != n-1 || q.Bytes() != b-f.WireLen() {
					t.Fatalf("PopSmall(100) took %v (%d bytes): Len %d Bytes %d", label(f), f.WireLen(), q.Len(), q.Bytes())
				}
				small = append(small, label(f))
				f.Release()
			}
			if !slices.Equal(small, tc.small) {
				t.Fatalf("PopSmall\n got %v\nwant %v", small, tc.small)
			}
			if got := popAll(t, q); !slices.Equal(got, tc.rest) {
				t.Fatalf("then Pop\n got %v\nwant %v", got, tc.rest)
			}
		})
	}
}

// TestQueuePopSmallLooksNear: PopSmall looks at the next smallScan turns
// only, so a link with many busy streams does not scan them all for each
// frame.
func TestQueuePopSmallLooksNear(t *testing.T) {
	checkPool(t)
	q := NewQueue()
	big := strings.Repeat("x", 1000)
	for i := range smallScan {
		push(t, q, fmt.Sprintf("DATA/%d/%s", i+1, big))
	}
	push(t, q, "DATA/1000/req")
	if f := q.PopSmall(100, 0); f != nil {
		t.Fatalf("PopSmall looked past %d turns: %v", smallScan, label(f))
	}
	q.Pop().Release()
	if f := q.PopSmall(100, 0); f == nil || label(f) != "DATA/1000/req" {
		t.Fatalf("PopSmall within %d turns: %v, want the request", smallScan, f)
	} else {
		f.Release()
	}
	release(q.DropAll())
}
