package engine

import (
	"testing"
	"time"
)

// TestStreamSideArrive: the verdict on each frame the peer sends a
// stream, in the states that matter.
func TestStreamSideArrive(t *testing.T) {
	opened := func() StreamSide { // an opener whose OPEN went out
		st := NewOpener(1)
		_ = st.Send(TypeOpen)
		return NewStreamSide(st, 100, 100)
	}
	up := func() StreamSide { // an opener the peer accepted
		s := opened()
		_ = s.Recv(TypeOpenOK)
		return s
	}
	reset := func() StreamSide {
		s := up()
		_ = s.Send(TypeRst)
		return s
	}
	for _, c := range []struct {
		name  string
		side  func() StreamSide
		frame func() *Frame
		want  Arrival
		code  Code
	}{
		{"OPEN_OK", opened, func() *Frame { return newFrame(TypeOpenOK, 1, nil) }, ArriveAccepted, 0},
		{"OPEN_FAIL", opened, func() *Frame { return NewReason(TypeOpenFail, 1, CodeDialFailed, "no") }, ArriveRefused, CodeDialFailed},
		{"DATA before OPEN_OK", opened, func() *Frame { return newFrame(TypeData, 1, []byte("x")) }, ArriveBroken, CodeProtocol},
		{"DATA", up, func() *Frame { return newFrame(TypeData, 1, make([]byte, 100)) }, ArriveData, 0},
		{"DATA beyond the window", up, func() *Frame { return newFrame(TypeData, 1, make([]byte, 101)) }, ArriveBroken, CodeFlowControl},
		{"FIN", up, func() *Frame { return newFrame(TypeFin, 1, nil) }, ArriveFin, 0},
		{"RST", up, func() *Frame { return NewReason(TypeRst, 1, CodeCancelled, "gone") }, ArriveReset, CodeCancelled},
		{"OPEN_OK twice", up, func() *Frame { return newFrame(TypeOpenOK, 1, nil) }, ArriveBroken, CodeProtocol},
		{"DATA after our RST", reset, func() *Frame { return newFrame(TypeData, 1, []byte("x")) }, ArriveDrop, 0},
		{"RST after our RST", reset, func() *Frame { return NewReason(TypeRst, 1, CodeCancelled, "x") }, ArriveDrop, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.side()
			f := c.frame()
			defer f.Release()
			a, r := s.Arrive(f)
			if a != c.want || r.Code != c.code {
				t.Fatalf("Arrive: %v %v, want %v with code %v", a, r, c.want, c.code)
			}
			if a == ArriveBroken && r.Text == "" {
				t.Fatal("a breach names no rule")
			}
		})
	}
}

// testBudget grants at most left bytes of growth.
type testBudget struct{ left uint32 }

func (b *testBudget) Take(n uint32) uint32 { n = min(n, b.left); b.left -= n; return n }
func (b *testBudget) Give(n uint32)        { b.left += n }

// TestStreamSideConsumed: credit goes back a quarter of the window at a
// time, growth is bounded by the budget and given back at the end, and a
// stream that takes no more DATA grants nothing.
func TestStreamSideConsumed(t *testing.T) {
	st := NewAccepter(1)
	_ = st.Recv(TypeOpen)
	_ = st.Send(TypeOpenOK)
	s := NewStreamSide(st, 1000, 4000)
	b := &testBudget{left: 300}
	now := time.Unix(0, 0)
	if err := s.Early(1000); err != nil {
		t.Fatal(err)
	}
	if c := s.Consumed(100, 0, now, 0, b); c != 0 {
		t.Fatalf("credit %d for a tenth of the window, want none yet", c)
	}
	// The peer ran out of credit and the reader keeps up: the window grows
	// by what the budget allows.
	c := s.Consumed(900, 0, now, 0, b)
	if c != 1300 || s.Window() != 1300 || b.left != 0 {
		t.Fatalf("credit %d, window %d, budget left %d; want 1300, 1300, 0", c, s.Window(), b.left)
	}
	s.GiveBack(b)
	if b.left != 300 {
		t.Fatalf("budget after GiveBack: %d, want 300", b.left)
	}
	f := newFrame(TypeFin, 1, nil)
	if a, _ := s.Arrive(f); a != ArriveFin {
		t.Fatalf("FIN: %v", a)
	}
	f.Release()
	if err := s.Early(500); err != nil {
		t.Fatal(err)
	}
	if c := s.Consumed(500, 0, now, 0, nil); c != 0 {
		t.Fatalf("credit %d after the peer's FIN, want none", c)
	}
}
