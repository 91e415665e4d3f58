package actors

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/sockmux/sockmux/engine"
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
	q := newFrameQueue(nil, engine.Version) // no socket: the writer writes everything
	if n := q.push([]*engine.Frame{engine.NewCredit(1, 10), engine.NewCredit(3, 30)}); n != 0 {
		t.Fatalf("push wrote %d bytes with no socket", n)
	}
	q.finish(engine.NewReason(engine.TypeGoAway, 0, engine.CodeShutdown, "bye"))
	fs, off, _, drained, ok := q.take(nil)
	if !ok || !drained || off != 0 || len(fs) != 3 || fs[0].Stream != 1 || fs[1].Stream != 3 || fs[2].Type != engine.TypeGoAway {
		t.Fatalf("took %v (drained %v ok %v)", fs, drained, ok)
	}
	for _, f := range fs {
		f.Release()
	}
	q.push([]*engine.Frame{engine.NewCredit(5, 1)}) // after finish: released
	q2 := newFrameQueue(nil, engine.Version)
	q2.push([]*engine.Frame{engine.NewCredit(1, 1)})
	q2.finish(engine.NewReason(engine.TypeGoAway, 0, engine.CodeShutdown, ""))
	q2.close()
	if _, _, _, _, ok := q2.take(nil); ok {
		t.Fatal("a closed queue still gives frames")
	}
	if got := engine.PoolOutstanding(); got != before {
		t.Fatalf("%d buffers outstanding, want %d", got, before)
	}
}

// TestFrameQueueWritesAtOnce: on an idle socket push writes the frames
// itself; what a full socket does not take waits for the writer, which,
// resuming within the first frame left, completes the byte stream in
// order; nothing is left in the pool.
func TestFrameQueueWritesAtOnce(t *testing.T) {
	before := engine.PoolOutstanding()
	a, b := tcpPair(t)
	q := newFrameQueue(a, engine.Version)
	var w wireLog
	pushIdle(t, q, b, &w)
	pushPastFull(t, q, a, b, &w)
	if got := engine.PoolOutstanding(); got != before {
		t.Fatalf("%d buffers outstanding, want %d", got, before)
	}
}

// pushPastFull pushes 16 MiB of DATA, then extra, against a small socket
// buffer no one reads: the socket takes part, and the test plays the
// writer for the rest, which b must read whole and in order.
func pushPastFull(t *testing.T, q *frameQueue, a, b net.Conn, w *wireLog, extra ...*engine.Frame) {
	t.Helper()
	_ = a.(*net.TCPConn).SetWriteBuffer(64 << 10)
	w.want = w.want[:0]
	n := q.push(w.add(bulkFrames(256)...))
	if n <= 0 || n >= len(w.want) {
		t.Fatalf("push wrote %d of %d bytes at once, want a part", n, len(w.want))
	}
	if len(extra) > 0 {
		q.push(w.add(extra...))
	}
	rest, off, _, _, ok := q.take(nil)
	if !ok || len(rest) == 0 {
		t.Fatalf("the writer got %d frames (ok %v)", len(rest), ok)
	}
	finishAsWriter(t, rest, off, n, b, w.want, func(bufs net.Buffers) error { _, err := bufs.WriteTo(a); return err })
	q.written()
}

// wireLog is the bytes a test expects on the wire for the frames it
// pushes.
type wireLog struct{ want []byte }

// add records fs's wire bytes and returns fs, for push.
func (w *wireLog) add(fs ...*engine.Frame) []*engine.Frame {
	for _, f := range fs {
		w.want = engine.AppendFrame(w.want, f, engine.Version)
	}
	return fs
}

// pushIdle pushes two small frames on q's idle socket, which must take
// them at once, and reads them at b.
func pushIdle(t *testing.T, q *frameQueue, b net.Conn, w *wireLog) {
	t.Helper()
	n := q.push(w.add(engine.NewCredit(1, 10), engine.NewEmpty(engine.TypeFin, 3)))
	if n != len(w.want) {
		t.Fatalf("push wrote %d bytes at once, want %d", n, len(w.want))
	}
	got := make([]byte, len(w.want))
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, w.want) {
		t.Fatalf("read %x (%v), want %x", got, err, w.want)
	}
}

// bulkFrames is n full DATA frames of stream 1, each with bytes of its own.
func bulkFrames(n int) []*engine.Frame {
	var fs []*engine.Frame
	for i := range n {
		p := engine.GetBuffer(engine.DefaultMaxPayload)
		for j := range p.B {
			p.B[j] = byte(i*7 + j)
		}
		fs = append(fs, &engine.Frame{Type: engine.TypeData, Stream: 1, Payload: p})
	}
	return fs
}

// finishAsWriter plays the carrier's writer for rest, what take gave it
// (off bytes of the first already out, done bytes written before it):
// the bytes must add up to want, write sends them, and b must read want
// whole, in order. It releases rest.
func finishAsWriter(t *testing.T, rest []*engine.Frame, off, done int, b net.Conn, want []byte, write func(net.Buffers) error) {
	t.Helper()
	var bufs net.Buffers
	total := 0
	for _, f := range rest {
		bufs = append(bufs, engine.AppendFrame(nil, f, engine.Version))
		total += f.WireLen()
	}
	if done+total-off != len(want) {
		t.Fatalf("%d out before + %d left - %d of the first = %d, want %d", done, total, off, done+total-off, len(want))
	}
	errc := make(chan error, 1)
	go func() { errc <- write(skipBytes(bufs, off)) }()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the stream differs from the frames pushed (%v)", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, f := range rest {
		f.Release()
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestBudget: takes never exceed what is left; gives put it back.
func TestBudget(t *testing.T) {
	var b budget
	b.left.Store(100)
	if got := b.Take(60); got != 60 {
		t.Fatalf("take(60) = %d", got)
	}
	if got := b.Take(60); got != 40 {
		t.Fatalf("take(60) with 40 left = %d", got)
	}
	if got := b.Take(1); got != 0 {
		t.Fatalf("take from an empty budget = %d", got)
	}
	b.Give(100)
	if b.left.Load() != 100 {
		t.Fatalf("left %d after giving all back", b.left.Load())
	}
}

// TestFrameQueueWriterOnDemand: a carrier's writer goroutine runs only
// while there is work for it. push on an idle socket writes at once and
// starts none; what a full socket leaves starts one (once, however many
// pushes queue behind it); its take that finds nothing ends it, and the
// next push on the idle socket writes at once again; finish starts one to
// write the last frame; close starts none.
func TestFrameQueueWriterOnDemand(t *testing.T) {
	before := engine.PoolOutstanding()
	a, b := tcpPair(t)
	q := newFrameQueue(a, engine.Version)
	starts := 0
	q.setWriter(func() { starts++ })
	var w wireLog
	pushIdle(t, q, b, &w)
	if starts != 0 {
		t.Fatalf("%d writers started for frames written at once", starts)
	}
	pushPastFull(t, q, a, b, &w, engine.NewCredit(7, 70))
	if starts != 1 {
		t.Fatalf("%d writers started for what a full socket left, want 1", starts)
	}
	if _, _, _, _, ok := q.take(nil); ok || q.writer {
		t.Fatalf("take on an empty queue: ok %v, a writer still counted running: %v", ok, q.writer)
	}
	w.want = w.want[:0]
	pushIdle(t, q, b, &w)
	if starts != 1 {
		t.Fatalf("%d writers started, want still 1: the idle socket took the push", starts)
	}
	q.finish(engine.NewReason(engine.TypeGoAway, 0, engine.CodeShutdown, "bye"))
	if starts != 2 {
		t.Fatalf("%d writers started, want 2: finish needs one for its last frame", starts)
	}
	q.close()
	q.push([]*engine.Frame{engine.NewCredit(9, 1)}) // closed: released, no writer
	if starts != 2 {
		t.Fatalf("%d writers started after close, want 2", starts)
	}
	if got := engine.PoolOutstanding(); got != before {
		t.Fatalf("%d buffers outstanding, want %d", got, before)
	}
}
