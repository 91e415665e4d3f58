package actors

import (
	"bytes"
	"fmt"
	"testing"

	"sockmux/engine"
	"sockmux/internal/testkit"
)

func newShared(p []byte, refs int32) *sharedBuf {
	b := engine.GetBuffer(len(p))
	copy(b.B, p)
	sb := &sharedBuf{b: b}
	sb.refs.Store(refs)
	return sb
}

// drain takes everything queued and returns its bytes, letting go of the
// chunks.
func drain(q *outQueue) []byte {
	var out []byte
	for q.queued() > 0 {
		chunks, _ := q.take(nil, 1<<30)
		for _, c := range chunks {
			out = append(out, c.sb.b.B[c.off:]...)
			c.sb.release()
		}
	}
	return out
}

// TestOutQueue: what a slow client's queue keeps, drops and refuses.
func TestOutQueue(t *testing.T) {
	cases := []struct {
		name    string
		limit   int
		drop    bool
		pushes  []string
		dropped []int  // per push
		refused []bool // per push (overflow)
		want    string
	}{
		{"fits", 10, true, []string{"abc", "def"}, []int{0, 0}, []bool{false, false}, "abcdef"},
		{"drop the oldest bytes, part of a chunk", 8, true, []string{"abcde", "fghij"}, []int{0, 2}, []bool{false, false}, "cdefghij"},
		{"drop whole chunks", 6, true, []string{"ab", "cd", "ef", "ghijk"}, []int{0, 0, 0, 5}, []bool{false, false, false, false}, "fghijk"},
		{"a big chunk fits an empty queue", 4, true, []string{"abcdefgh"}, []int{0}, []bool{false}, "abcdefgh"},
		{"a big chunk drops everything before it", 4, true, []string{"ab", "cdefgh"}, []int{0, 2}, []bool{false, false}, "cdefgh"},
		{"disconnect: refused past the limit", 6, false, []string{"abcd", "ef", "g"}, []int{0, 0, 0}, []bool{false, false, true}, "abcdef"},
		{"disconnect: a big chunk fits an empty queue", 4, false, []string{"abcdefgh"}, []int{0}, []bool{false}, "abcdefgh"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			q := newOutQueue(tc.limit)
			for i, p := range tc.pushes {
				d, over := q.push(newShared([]byte(p), 1), tc.drop)
				if d != tc.dropped[i] || over != tc.refused[i] {
					t.Fatalf("push %q: dropped %d, overflow %v; want %d, %v", p, d, over, tc.dropped[i], tc.refused[i])
				}
			}
			if got := string(drain(q)); got != tc.want {
				t.Fatalf("queue held %q, want %q", got, tc.want)
			}
			q.push(newShared([]byte("left behind"), 1), tc.drop)
			q.close()
			if _, ok := q.take(nil, 1); ok {
				t.Fatal("take after close")
			}
		})
	}
}

// TestSharedBufLastReturns: a chunk held by three queues goes back to the
// pool once, when the last lets go, whichever way each lets go.
func TestSharedBufLastReturns(t *testing.T) {
	testkit.CheckLeaks(t)
	before := engine.PoolOutstanding()
	qs := []*outQueue{newOutQueue(100), newOutQueue(100), newOutQueue(3)}
	sb := newShared([]byte("hello"), 3)
	for _, q := range qs {
		q.push(sb, true)
	}
	drain(qs[0])
	qs[1].close()
	if engine.PoolOutstanding() != before+1 {
		t.Fatal("returned while a queue still holds it")
	}
	qs[2].push(newShared([]byte("xyz"), 1), true) // drops it from the third
	if engine.PoolOutstanding() != before+1 {
		t.Fatalf("outstanding %d, want %d", engine.PoolOutstanding(), before+1)
	}
	drain(qs[2])
}

// TestReplayRing: the ring keeps the last bytes, across wraps, in order.
func TestReplayRing(t *testing.T) {
	for _, size := range []int{0, 1, 7, 100, 70000} {
		for _, step := range []int{1, 3, 50, 99, 150000} {
			t.Run(fmt.Sprintf("size %d step %d", size, step), func(t *testing.T) {
				testkit.CheckLeaks(t)
				r := newReplayRing(size)
				all := testkit.Payload(uint64(size+step), 200000)
				for p := all; len(p) > 0; {
					n := min(step, len(p))
					r.write(p[:n])
					p = p[n:]
				}
				var got []byte
				for _, sb := range r.chunks() {
					if len(sb.b.B) > shareChunk {
						t.Fatalf("a replay chunk of %d bytes", len(sb.b.B))
					}
					got = append(got, sb.b.B...)
					sb.release()
				}
				if want := all[len(all)-size:]; !bytes.Equal(got, want) {
					t.Fatalf("ring holds %d bytes, not the last %d written", len(got), size)
				}
			})
		}
	}
}
