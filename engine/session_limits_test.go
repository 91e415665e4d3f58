package engine

import (
	"errors"
	"testing"
)

// TestSessionSendLimit: with windows far larger than the link's send
// limit, what the link holds for sending stays within the limit plus each
// stream's idle allowance however much its writers offer, and the writers
// go on as the carrier takes frames.
func TestSessionSendLimit(t *testing.T) {
	checkPool(t)
	const limit = 64 << 10
	s := NewSession(SessionConfig{Role: RoleDialer, MaxStreams: 8, Window: 1 << 20, PeerWindow: 1 << 20, MaxWindow: 1 << 20,
		MaxData: 16 << 10, SendLimit: limit})
	t.Cleanup(s.Close)
	s.AddCarrier(0)
	var ids []uint32
	for range 4 {
		id, err := s.Open(TargetDial, "x:1")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	offer := make([]byte, 256<<10)
	written := 0
	for round := range 8 {
		for _, id := range ids {
			n, err := s.Write(id, offer)
			if err != nil {
				t.Fatal(err)
			}
			written += n
		}
		if held, bound := s.Sending(); held > bound || bound > limit+4*IdleAllowance {
			t.Fatalf("round %d: holding %d for sending, bound %d", round, held, bound)
		}
		for f := next(s); f != nil; f = next(s) { // the carrier takes what waits
			f.Release()
		}
	}
	s.Events()
	if written < 8*limit {
		t.Fatalf("the writers wrote %d bytes over 8 rounds of a %d-byte limit: the room did not come back", written, limit)
	}
}

// TestSessionDown: a link whose resume window ran out resets every stream
// that had not ended, tells the local side of each, and refuses what
// follows with an error naming why.
func TestSessionDown(t *testing.T) {
	p := newSessionPair(t, true, allowOnly("x:1"))
	done, _ := p.a.Open(TargetDial, "x:1")
	open, _ := p.a.Open(TargetDial, "x:1")
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{done, open} {
		if err := p.b.Accept(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(p.a.CloseWrite(done), p.b.CloseWrite(done)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.a.Write(open, []byte("never acknowledged")); err != nil {
		t.Fatal(err)
	}
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	p.a.Events()
	p.a.Down(Reason{Code: CodeResumeExpired, Text: "not resumed in 30s"})
	var reset []uint32
	for _, ev := range p.a.Events() {
		if ev.Kind == EventReset && ev.Reason.Code == CodeResumeExpired {
			reset = append(reset, ev.Stream)
		}
	}
	if len(reset) != 1 || reset[0] != open {
		t.Fatalf("streams told of a reset: %v, want only %d (stream %d had ended cleanly)", reset, open, done)
	}
	if in, _ := p.a.Stream(open); in.State != StateReset {
		t.Fatalf("the open stream after Down: %+v", in)
	}
	err := p.a.Err()
	if !errors.Is(err, ErrLinkDown) || !errors.Is(err, ErrResumeExpired) {
		t.Fatalf("Err after Down: %v, want ErrLinkDown and ErrResumeExpired", err)
	}
	if _, oerr := p.a.Open(TargetDial, "x:1"); oerr != err {
		t.Fatalf("Open after Down: %v, want %v", oerr, err)
	}
	if f := next(p.a); f != nil {
		t.Fatalf("Next after Down: %v", f)
	}
}

// TestSessionResetGivesRoom: a Reset that drops its stream's queued DATA
// frees that room in Grants, and a stream waiting for the link's send
// limit is told at once (EventWritable), as the Scheduler grants after
// every message; otherwise it waits for whatever call grants next.
func TestSessionResetGivesRoom(t *testing.T) {
	checkPool(t)
	const limit = 64 << 10
	s := NewSession(SessionConfig{Role: RoleDialer, MaxStreams: 8, Window: 1 << 20, PeerWindow: 1 << 20, MaxWindow: 1 << 20,
		MaxData: 16 << 10, SendLimit: limit})
	t.Cleanup(s.Close)
	// No carrier: everything written stays queued.
	var ids []uint32
	for range 3 {
		id, err := s.Open(TargetDial, "x:1")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	offer := make([]byte, 256<<10)
	for _, id := range ids {
		if _, err := s.Write(id, offer); err != nil {
			t.Fatal(err)
		}
	}
	s.Events()
	last := ids[2]
	if n, _ := s.Write(last, offer); n != 0 {
		t.Fatalf("stream %d wrote %d more with the link's room taken", last, n)
	}
	if err := s.Reset(ids[0], CodeCancelled, "gone"); err != nil {
		t.Fatal(err)
	}
	writable := false
	for _, ev := range s.Events() {
		writable = writable || ev.Kind == EventWritable && ev.Stream == last
	}
	if !writable {
		held, bound := s.Sending()
		t.Fatalf("after a Reset freed its queued DATA (held %d of %d), the stream waiting for room was not told it may write", held, bound)
	}
}

// TestSessionRefusedOpenForgotten: an OPEN refused at once leaves nothing
// behind once the local side forgets it: not a place among the streams
// open, not a stream in Grants (a peer that keeps opening what is not
// allowed must not grow the link's state).
func TestSessionRefusedOpenForgotten(t *testing.T) {
	p := newSessionPair(t, true, allowOnly("ok:1"))
	var refused []uint32
	for range 20 {
		id, err := p.a.Open(TargetDial, "nope:1")
		if err != nil {
			t.Fatal(err)
		}
		refused = append(refused, id)
		if err := p.pump(); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range refused {
		if !p.b.Forget(id) {
			t.Fatalf("stream %d refused, not ended at the accepter", id)
		}
	}
	if n := len(p.b.out.Grants.streams); n != 0 {
		t.Fatalf("%d refused streams still in the accepter's Grants after they were forgotten", n)
	}
	if n := p.b.opens.Open(); n != 0 {
		t.Fatalf("%d streams counted open at the accepter", n)
	}
}

// TestSessionCallsAfterDown: after Down every call on a stream fails with
// the link's error (ErrLinkDown and what its code stands for), as Down
// says, not with the stream's own state.
func TestSessionCallsAfterDown(t *testing.T) {
	p := newSessionPair(t, true, allowOnly("x:1"))
	mine, _ := p.a.Open(TargetDial, "x:1")
	theirs, _ := p.b.Open(TargetDial, "x:1")
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	if err := p.b.Accept(mine); err != nil {
		t.Fatal(err)
	}
	p.a.Down(Reason{Code: CodeResumeExpired, Text: "not resumed"})
	_, werr := p.a.Write(mine, []byte("x"))
	for what, err := range map[string]error{
		"Write":      werr,
		"CloseWrite": p.a.CloseWrite(mine),
		"Reset":      p.a.Reset(mine, CodeCancelled, "x"),
		"Accept":     p.a.Accept(theirs),
		"Refuse":     p.a.Refuse(theirs, CodeDialFailed, "x"),
	} {
		if !errors.Is(err, ErrLinkDown) || !errors.Is(err, ErrResumeExpired) {
			t.Errorf("%s after Down: %v, want ErrLinkDown and ErrResumeExpired", what, err)
		}
	}
	if f := next(p.a); f != nil {
		t.Fatalf("Next after Down: %v", f)
	}
}

// TestSessionCreditOverflow: a CREDIT that would take a stream's window
// past MaxWindow is not taken, and the link and the stream go on, as in
// the daemon's Scheduler.
func TestSessionCreditOverflow(t *testing.T) {
	p := newSessionPair(t, false, allowOnly("x:1"))
	id, _ := p.a.Open(TargetDial, "x:1")
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	if err := p.a.Receive(0, NewCredit(id, MaxWindow)); err != nil || p.a.Err() != nil {
		t.Fatalf("an overflowing CREDIT: %v, link error %v; want it dropped", err, p.a.Err())
	}
	if n, err := p.a.Write(id, make([]byte, 8192)); err != nil || n != 4096 {
		t.Fatalf("Write after the dropped CREDIT: %d, %v; want the 4096 bytes of the window it had", n, err)
	}
}

// TestSessionOneCarrierUnsequenced: a link that does not sequence takes
// no second carrier, so every frame goes on the first, even while the
// first's writer is full (a large frame would otherwise go to another).
func TestSessionOneCarrierUnsequenced(t *testing.T) {
	checkPool(t)
	s := NewSession(SessionConfig{Role: RoleDialer, MaxStreams: 4, Window: 1 << 16, PeerWindow: 1 << 16, MaxData: 4096, HighWater: 8192})
	t.Cleanup(s.Close)
	s.AddCarrier(0)
	s.AddCarrier(1)
	id, err := s.Open(TargetDial, "x:1")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Write(id, make([]byte, 1<<16)); err != nil || n == 0 {
		t.Fatalf("Write: %d, %v", n, err)
	}
	sent := 0
	for f, c := s.Next(); f != nil; f, c = s.Next() { // carrier 0's writer takes nothing
		if c != 0 {
			t.Fatalf("%v went on carrier %d of an unsequenced link", f, c)
		}
		sent++
		f.Release()
	}
	if sent == 0 {
		t.Fatal("nothing went on the one carrier")
	}
}
