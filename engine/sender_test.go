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
