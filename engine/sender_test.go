package engine

import (
	"bytes"
	"testing"
	"time"
)

// TestSplitFrame: a DATA frame cut for a slow path keeps its first n bytes
// and hands the rest, in a buffer of its own, to a frame of the same
// stream; both go back to the pool.
func TestSplitFrame(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 7000)
	for _, n := range []int{1, MinChunk, len(payload) - 1} {
		f := &Frame{Type: TypeData, Stream: 7, Payload: GetBuffer(len(payload))}
		copy(f.Payload.B, payload)
		rest := splitFrame(f, n)
		if rest.Type != TypeData || rest.Stream != 7 || rest.Seq != 0 {
			t.Fatalf("cut at %d: the rest is %v seq %d", n, rest, rest.Seq)
		}
		if !bytes.Equal(f.Bytes(), payload[:n]) || !bytes.Equal(rest.Bytes(), payload[n:]) {
			t.Fatalf("cut at %d: %d + %d bytes, not the payload's halves", n, f.Len(), rest.Len())
		}
		if &rest.Payload.B[0] == &f.Payload.B[:cap(f.Payload.B)][n] {
			t.Fatalf("cut at %d: the rest shares the frame's buffer", n)
		}
		f.Release()
		rest.Release()
	}
}

// testSender is a CapSeq Sender with carriers ids, whose streams are
// attached with a window of window bytes each.
func testSender(tb testing.TB, window uint32, streams []uint32, ids ...int) *Sender {
	tb.Helper()
	checkPool(tb)
	s := NewSender(SenderConfig{Limit: 1 << 20, PerStream: 1 << 20, Seq: true, PeerReorder: 1 << 20, HighWater: 1 << 20})
	tb.Cleanup(s.Close)
	for _, id := range ids {
		s.AddCarrier(id, time.Unix(0, 0))
	}
	for _, id := range streams {
		s.Grants.Attach(id, window, 0)
	}
	s.Grants.Next(nil)
	return s
}

// TestSenderResendFirst: what a lost carrier carried goes again before
// anything new, on a carrier that is up, and once acknowledged it does
// not go again.
func TestSenderResendFirst(t *testing.T) {
	s := testSender(t, 1<<16, []uint32{1}, 0, 1)
	now := time.Unix(0, 0)
	on := map[uint64]int{}
	for range 4 {
		if !s.Push(newFrame(TypeData, 1, make([]byte, 100))) {
			t.Fatal("DATA within the grant dropped")
		}
		f, p := s.Next(now)
		if f == nil {
			t.Fatal("nothing to send with frames waiting")
		}
		on[f.Seq] = p.ID
		p.Queued -= f.WireLen() // its writer took it
		f.Release()
	}
	lost := 0
	for _, c := range on {
		if c == 0 {
			lost++
		}
	}
	if lost == 0 {
		t.Fatalf("carrier 0 was given nothing of %v", on)
	}
	if n := s.CarrierLost(0); n != lost {
		t.Fatalf("CarrierLost put %d frames in line, carrier 0 had %d", n, lost)
	}
	if !s.Push(newFrame(TypeData, 1, make([]byte, 100))) {
		t.Fatal("DATA within the grant dropped")
	}
	var again []uint64
	for f, p := s.Next(now); f != nil; f, p = s.Next(now) {
		if p.ID != 1 {
			t.Fatalf("frame %d given to carrier %d, which is gone", f.Seq, p.ID)
		}
		again = append(again, f.Seq)
		f.Release()
	}
	if len(again) != lost+1 || again[len(again)-1] != 5 {
		t.Fatalf("sent %v after the loss: want the %d lost frames first, then frame 5", again, lost)
	}
	if err := s.Ack(1, Ack{Received: 5, CarrierBytes: 0}, now); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Next(now); f != nil {
		t.Fatalf("after the ACK of everything, Next gives %v", f)
	}
	if err := s.Ack(1, Ack{Received: 9}, now); err == nil {
		t.Fatal("an ACK of what was never sent is taken")
	}
}

// TestSenderResetDrops: a RST takes the place of what its stream had
// waiting, whose room in Grants is free again, and later DATA of that
// stream is dropped.
func TestSenderResetDrops(t *testing.T) {
	s := testSender(t, 1<<16, []uint32{1, 3}, 0)
	for _, id := range []uint32{1, 3, 1} {
		if !s.Push(newFrame(TypeData, id, make([]byte, 1000))) {
			t.Fatal("DATA within the grant dropped")
		}
	}
	held := s.Grants.Held()
	s.Push(NewReason(TypeRst, 1, CodeCancelled, "gone"))
	if got := s.Grants.Held(); got > held-2000 {
		t.Fatalf("held %d for sending after the RST, %d before", got, held)
	}
	if s.Push(newFrame(TypeData, 1, make([]byte, 10))) {
		t.Fatal("DATA of a reset stream queued")
	}
	var types []Type
	for f, p := s.Next(time.Unix(0, 0)); f != nil; f, p = s.Next(time.Unix(0, 0)) {
		if f.Stream == 1 {
			types = append(types, f.Type)
		}
		p.Queued -= f.WireLen()
		f.Release()
	}
	if len(types) != 1 || types[0] != TypeRst {
		t.Fatalf("stream 1 sent %v, want its RST alone", types)
	}
}

// TestSenderInteractive: on a striped link a small DATA frame of a stream
// that carried no bulk lately makes the link interactive (tighter caps,
// Stripe.Interactive) for InteractiveFor; a bulk frame, a control frame,
// a bulk stream's own small frame or the small rest of a frame cut for a
// slow path does not, and neither does anything on a link of one carrier.
func TestSenderInteractive(t *testing.T) {
	t0 := time.Unix(0, 0)
	send := func(t *testing.T, s *Sender, now time.Time) {
		t.Helper()
		f, p := s.Next(now)
		if f == nil {
			t.Fatal("nothing to send")
		}
		p.Queued -= f.WireLen()
		f.Release()
	}
	small := func(id uint32) func() *Frame {
		return func() *Frame { return newFrame(TypeData, id, make([]byte, 64)) }
	}
	bulk := func(id uint32) func() *Frame {
		return func() *Frame { return newFrame(TypeData, id, make([]byte, 16<<10)) }
	}
	tests := []struct {
		name     string
		carriers []int
		frames   []func() *Frame
		want     bool
	}{
		{"small DATA", []int{0, 1}, []func() *Frame{small(3)}, true},
		{"small DATA beside another stream's bulk", []int{0, 1}, []func() *Frame{bulk(1), small(3)}, true},
		{"bulk DATA", []int{0, 1}, []func() *Frame{bulk(1)}, false},
		{"a bulk stream's small read", []int{0, 1}, []func() *Frame{bulk(1), small(1)}, false},
		{"a small control frame", []int{0, 1}, []func() *Frame{func() *Frame { return NewReason(TypeRst, 3, CodeCancelled, "gone") }}, false},
		{"small DATA on one carrier", []int{0}, []func() *Frame{small(3)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := testSender(t, 1<<20, []uint32{1, 3}, tc.carriers...)
			for _, f := range tc.frames {
				s.Push(f())
				send(t, s, t0)
			}
			s.Push(bulk(1)())
			send(t, s, t0.Add(InteractiveFor/2))
			if s.Stripe.Interactive != tc.want {
				t.Fatalf("interactive %v after %s, want %v", s.Stripe.Interactive, tc.name, tc.want)
			}
			s.Push(bulk(1)())
			send(t, s, t0.Add(2*InteractiveFor))
			if s.Stripe.Interactive {
				t.Fatalf("still interactive %v after the last small frame", 2*InteractiveFor)
			}
		})
	}
	// The rest of a frame cut for a slow path is small but not the
	// stream's own: it leaves the link as it was.
	s := testSender(t, 1<<20, []uint32{3})
	slow, fast := withRate(t, &s.Stripe, 0, 1e6, t0), withRate(t, &s.Stripe, 1, 1e6, t0)
	slow.RTT, fast.RTT = 10*time.Millisecond, 10*time.Millisecond
	c := s.Stripe.Chunk(slow)
	if c == 0 {
		t.Fatal("no cut on a striped link of 1 MB/s paths")
	}
	s.Push(newFrame(TypeData, 3, make([]byte, c+100)))
	now := t0.Add(time.Second)
	send(t, s, now)
	send(t, s, now) // the 100-byte rest
	s.Push(newFrame(TypeData, 3, make([]byte, 16<<10)))
	send(t, s, now.Add(time.Millisecond))
	if s.Stripe.Interactive {
		t.Fatal("the rest of a cut frame made the link interactive")
	}
}

// TestInteractivitySweep: however many streams carry bulk once, the
// record of them stays about the number that did so lately.
func TestInteractivitySweep(t *testing.T) {
	var iv Interactivity
	t0 := time.Unix(0, 0)
	for i := range 10000 {
		iv.Frame(uint32(2*i+1), 16<<10, t0.Add(time.Duration(i)*time.Millisecond))
	}
	// InteractiveFor is 250 ms: about 250 streams count at the end.
	if n := len(iv.bulkAt); n > 4*int(InteractiveFor/time.Millisecond)+minSweep {
		t.Fatalf("%d streams remembered after 10,000 came and went", n)
	}
	if iv.Active(t0.Add(10 * time.Second)) {
		t.Fatal("bulk alone made the side interactive")
	}
}
