package engine

import "testing"

// TestResender: new frames wait at the peer's reorder limit; what a lost
// carrier carried goes again once, in order, however often it is lost;
// what is acknowledged meanwhile does not go again.
func TestResender(t *testing.T) {
	start := PoolOutstanding()
	r := NewResender(3*(MaxHeaderLen+10), false)
	var sent []*Frame
	for i := range 3 {
		f := newFrame(TypeData, 1, make([]byte, 10))
		if !r.Room(f.WireLen()) {
			t.Fatalf("no room for frame %d under the limit", i)
		}
		r.Number(f, i%2) // carriers 0, 1, 0
		sent = append(sent, f)
	}
	if r.Room(MaxHeaderLen + 10) {
		t.Fatal("room past the peer's reorder limit")
	}
	if f, _ := r.Peek(); f != nil {
		t.Fatalf("Peek %v with nothing lost", f)
	}
	if n := r.Lost(0); n != 2 {
		t.Fatalf("carrier 0 lost %d frames, want 2", n)
	}
	if n := r.Lost(0); n != 0 || r.Waiting() != 2 {
		t.Fatalf("lost again: %d added, %d waiting; want 0 and 2", n, r.Waiting())
	}
	f, seq := r.Peek()
	if f != sent[0] || seq != 1 {
		t.Fatalf("first to go again: %v (%d), want frame 1", f, seq)
	}
	r.SentAgain(1)
	if n := r.Lost(1); n != 2 {
		t.Fatalf("carrier 1 now holds frames 1 and 2, lost %d", n)
	}
	if err := r.Ack(2); err != nil {
		t.Fatal(err)
	}
	if f, seq := r.Peek(); f != sent[2] || seq != 3 {
		t.Fatalf("after ACK 2, next to go again: %v (%d), want frame 3", f, seq)
	}
	if err := r.Ack(9); err == nil {
		t.Fatal("an ACK of what was never sent is accepted")
	}
	if err := r.Ack(3); err != nil || r.Bytes() != 0 || r.Waiting() != 0 {
		t.Fatalf("after ACK 3: %v, %d bytes kept, %d waiting", err, r.Bytes(), r.Waiting())
	}
	r.Drop()
	if got := PoolOutstanding(); got != start {
		t.Fatalf("pool: %d buffers outstanding, %d at the start", got, start)
	}
}
