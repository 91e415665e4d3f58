package actors

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
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
		policy  SlowPolicy
		pushes  []string
		dropped []int  // per push
		refused []bool // per push (overflow)
		want    string
	}{
		{"fits", 10, SlowDrop, []string{"abc", "def"}, []int{0, 0}, []bool{false, false}, "abcdef"},
		{"drop the oldest bytes, part of a chunk", 8, SlowDrop, []string{"abcde", "fghij"}, []int{0, 2}, []bool{false, false}, "cdefghij"},
		{"drop whole chunks", 6, SlowDrop, []string{"ab", "cd", "ef", "ghijk"}, []int{0, 0, 0, 5}, []bool{false, false, false, false}, "fghijk"},
		{"a big chunk fits an empty queue", 4, SlowDrop, []string{"abcdefgh"}, []int{0}, []bool{false}, "abcdefgh"},
		{"a big chunk drops everything before it", 4, SlowDrop, []string{"ab", "cdefgh"}, []int{0, 2}, []bool{false, false}, "cdefgh"},
		{"disconnect: refused past the limit", 6, SlowDisconnect, []string{"abcd", "ef", "g"}, []int{0, 0, 0}, []bool{false, false, true}, "abcdef"},
		{"disconnect: a big chunk fits an empty queue", 4, SlowDisconnect, []string{"abcdefgh"}, []int{0}, []bool{false}, "abcdefgh"},
		{"wait: nothing dropped or refused past the limit", 6, SlowWait, []string{"abcd", "ef", "g"}, []int{0, 0, 0}, []bool{false, false, false}, "abcdefg"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			gate := newUpstreamGate()
			q := newOutQueue(tc.limit, tc.policy, &queueWait{gate: gate, timeout: time.Hour, stuck: func(uint64) {}})
			for i, p := range tc.pushes {
				d, over := q.push(newShared([]byte(p), 1))
				if d != tc.dropped[i] || over != tc.refused[i] {
					t.Fatalf("push %q: dropped %d, overflow %v; want %d, %v", p, d, over, tc.dropped[i], tc.refused[i])
				}
			}
			if got := string(drain(q)); got != tc.want {
				t.Fatalf("queue held %q, want %q", got, tc.want)
			}
			if gate.paused() {
				t.Fatal("an empty queue holds the upstream")
			}
			q.push(newShared([]byte("left behind"), 1))
			q.close()
			if _, ok := q.take(nil, 1); ok {
				t.Fatal("take after close")
			}
			if gate.paused() {
				t.Fatal("a closed queue holds the upstream")
			}
		})
	}
}

// TestOutQueueWait: under SlowWait a queue that reaches its limit pauses
// the upstream's gate until it drains to half; a stall that lasts the
// timeout reports itself (and only that stall); closing a full queue
// resumes the gate.
func TestOutQueueWait(t *testing.T) {
	testkit.CheckLeaks(t)
	gate := newUpstreamGate()
	stuck := make(chan uint64, 4)
	q := newOutQueue(8, SlowWait, &queueWait{gate: gate, timeout: time.Hour, stuck: func(s uint64) { stuck <- s }})
	open := func() bool { return !gate.paused() }
	q.push(newShared([]byte("abcd"), 1))
	if !open() || q.isFull() {
		t.Fatal("half a queue pauses the upstream")
	}
	q.push(newShared([]byte("efgh"), 1))
	if open() || !q.isFull() || !stuck1(q) {
		t.Fatal("a full queue does not pause the upstream")
	}
	take := func(max int) string {
		chunks, _ := q.take(nil, max)
		var out []byte
		for _, c := range chunks {
			out = append(out, c.sb.b.B[c.off:]...)
			c.sb.release()
		}
		return string(out)
	}
	q.push(newShared([]byte("ij"), 1)) // read before the pause: queued all the same
	if got := take(1); got != "abcd" || open() {
		t.Fatalf("took %q; queue of %d bytes, paused %v: want abcd, still paused at 6 of 8", got, q.queued(), !open())
	}
	if got := take(4); got != "efgh" || !open() || q.isFull() || stuck1(q) {
		t.Fatalf("took %q; queue of %d bytes, paused %v: want efgh, resumed at 2 of 8", got, q.queued(), !open())
	}
	// The second stall outlasts a short timeout.
	q.wait.timeout = 10 * time.Millisecond
	q.push(newShared([]byte("klmnop"), 1))
	if open() {
		t.Fatal("full again, the upstream is not paused")
	}
	select {
	case s := <-stuck:
		if _, ok := q.stuck(2); s != 2 || !ok || stuck1(q) {
			t.Fatalf("stuck reported stall %d", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stall outlasting its timeout was not reported")
	}
	q.close()
	if !open() || q.isFull() {
		t.Fatal("a closed queue holds the upstream")
	}
	select {
	case s := <-stuck:
		t.Fatalf("stall %d reported again", s)
	default:
	}
}

func stuck1(q *outQueue) bool {
	_, ok := q.stuck(1)
	return ok
}

// TestUpstreamGate: the reader waits while a queue is full or the hub has
// shareInflight bytes to queue, and not once the gate or its session is
// closed.
func TestUpstreamGate(t *testing.T) {
	testkit.CheckLeaks(t)
	g := newUpstreamGate()
	waited := func(done chan struct{}) chan bool {
		ch := make(chan bool, 1)
		go func() { ch <- g.wait(done) }()
		return ch
	}
	blocked := func(ch chan bool) bool {
		select {
		case <-ch:
			return false
		case <-time.After(20 * time.Millisecond):
			return true
		}
	}
	never := make(chan struct{})
	if !<-waited(never) {
		t.Fatal("a fresh gate is shut")
	}
	g.read(shareInflight)
	ch := waited(never)
	if !blocked(ch) {
		t.Fatal("the reader went on with shareInflight bytes unqueued")
	}
	g.queued(shareChunk)
	if !<-ch {
		t.Fatal("queued bytes did not open the gate")
	}
	g.pause()
	g.pause()
	ch = waited(never)
	g.resume()
	if !blocked(ch) {
		t.Fatal("the reader went on while a queue is still full")
	}
	g.resume()
	if !<-ch {
		t.Fatal("the last resume did not open the gate")
	}
	g.pause()
	done := make(chan struct{})
	ch = waited(done)
	close(done)
	if <-ch {
		t.Fatal("wait returned true for a session that ended")
	}
	ch = waited(never)
	g.close()
	if <-ch {
		t.Fatal("wait returned true on a closed gate")
	}
}

// TestSharedBufLastReturns: a chunk held by three queues goes back to the
// pool once, when the last lets go, whichever way each lets go.
func TestSharedBufLastReturns(t *testing.T) {
	testkit.CheckLeaks(t)
	before := engine.PoolOutstanding()
	qs := []*outQueue{newOutQueue(100, SlowDrop, nil), newOutQueue(100, SlowDrop, nil), newOutQueue(3, SlowDrop, nil)}
	sb := newShared([]byte("hello"), 3)
	for _, q := range qs {
		q.push(sb)
	}
	drain(qs[0])
	qs[1].close()
	if engine.PoolOutstanding() != before+1 {
		t.Fatal("returned while a queue still holds it")
	}
	qs[2].push(newShared([]byte("xyz"), 1)) // drops it from the third
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
