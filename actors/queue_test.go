package actors

import (
	"sync/atomic"
	"testing"

	"sockmux/engine"
)

func buf(s string) *engine.Buffer {
	b := engine.GetBuffer(len(s))
	copy(b.B, s)
	return b
}

// TestWriteQueue: with no writer running the caller writes itself; a
// started writer gets every pushed buffer, small ones coalesced (unless
// they are datagrams), with the byte count and high-water mark following;
// an empty take ends the writer, after which the caller writes again;
// finish shuts after the last buffer only while a writer runs; abort
// returns every buffer.
func TestWriteQueue(t *testing.T) {
	before := engine.PoolOutstanding()
	for _, datagram := range []bool{false, true} {
		var hw atomic.Int64
		q := newWriteQueue(&hw)
		q.noCoalesce = datagram
		b := buf("not queued")
		if q.push(b) {
			t.Fatal("a queue with no writer took a buffer")
		}
		engine.PutBuffer(b) // still the caller's
		if q.finish() {
			t.Fatal("a queue with no writer took the fin")
		}
		q.start([]*engine.Buffer{buf("hello ")})
		if !q.push(buf("world")) {
			t.Fatal("a running writer's queue refused a buffer")
		}
		got, fin, ok := q.take(nil)
		want := 1
		if datagram {
			want = 2
		}
		if !ok || fin || len(got) != want {
			t.Fatalf("datagram=%v: took %d buffers (fin %v ok %v), want %d", datagram, len(got), fin, ok, want)
		}
		var all string
		for _, b := range got {
			all += string(b.B)
			engine.PutBuffer(b)
		}
		if all != "hello world" || hw.Load() != 11 {
			t.Fatalf("took %q, high-water %d", all, hw.Load())
		}
		if left := q.written(11); left != 0 {
			t.Fatalf("%d bytes left after writing all", left)
		}
		if got, fin, ok = q.take(nil); !ok || fin || len(got) != 0 {
			t.Fatalf("an empty queue gave %d buffers (fin %v ok %v)", len(got), fin, ok)
		}
		b = buf("after the writer")
		if q.push(b) {
			t.Fatal("the queue took a buffer after its writer ended")
		}
		q.start([]*engine.Buffer{b})
		if !q.finish() {
			t.Fatal("a running writer did not take the fin")
		}
		got, fin, _ = q.take(nil)
		if len(got) != 1 || fin {
			t.Fatal("finish came before the last buffer")
		}
		engine.PutBuffer(got[0])
		if _, fin, _ = q.take(nil); !fin {
			t.Fatal("no fin after the last buffer")
		}
		if !q.push(buf("after the end")) { // taken, and returned
			t.Fatal("a finished queue gave a buffer back")
		}
		q2 := newWriteQueue(&hw)
		q2.start([]*engine.Buffer{buf("dropped")})
		q2.abort()
		if _, _, ok := q2.take(nil); ok {
			t.Fatal("an aborted queue still gives buffers")
		}
	}
	if got := engine.PoolOutstanding(); got != before {
		t.Fatalf("%d buffers outstanding, want %d", got, before)
	}
}

// TestFrameQueue: frames come out in order; finish adds the last frame
// after the queued ones; close returns everything.
func TestFrameQueue(t *testing.T) {
	before := engine.PoolOutstanding()
	q := newFrameQueue()
	q.push([]*engine.Frame{engine.NewCredit(1, 10), engine.NewCredit(3, 30)})
	q.finish(engine.NewReason(engine.TypeGoAway, 0, engine.CodeShutdown, "bye"))
	fs, drained, ok := q.take(nil)
	if !ok || !drained || len(fs) != 3 || fs[0].Stream != 1 || fs[1].Stream != 3 || fs[2].Type != engine.TypeGoAway {
		t.Fatalf("took %v (drained %v ok %v)", fs, drained, ok)
	}
	for _, f := range fs {
		f.Release()
	}
	q.push([]*engine.Frame{engine.NewCredit(5, 1)}) // after finish: released
	q2 := newFrameQueue()
	q2.push([]*engine.Frame{engine.NewCredit(1, 1)})
	q2.finish(engine.NewReason(engine.TypeGoAway, 0, engine.CodeShutdown, ""))
	q2.close()
	if _, _, ok := q2.take(nil); ok {
		t.Fatal("a closed queue still gives frames")
	}
	if got := engine.PoolOutstanding(); got != before {
		t.Fatalf("%d buffers outstanding, want %d", got, before)
	}
}

// TestBudget: takes never exceed what is left; gives put it back.
func TestBudget(t *testing.T) {
	var b budget
	b.left.Store(100)
	if got := b.take(60); got != 60 {
		t.Fatalf("take(60) = %d", got)
	}
	if got := b.take(60); got != 40 {
		t.Fatalf("take(60) with 40 left = %d", got)
	}
	if got := b.take(1); got != 0 {
		t.Fatalf("take from an empty budget = %d", got)
	}
	b.give(100)
	if b.left.Load() != 100 {
		t.Fatalf("left %d after giving all back", b.left.Load())
	}
}
