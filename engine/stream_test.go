package engine

import "testing"

// step is one frame sent or received on a stream, the error expected (nil,
// ErrStreamState or ErrStreamClosed) and the state after it.
type step struct {
	send  bool
	t     Type
	want  error
	state State
}

func snd(t Type, want error, st State) step { return step{true, t, want, st} }
func rcv(t Type, want error, st State) step { return step{false, t, want, st} }

func runSteps(tb testing.TB, s *Stream, steps []step) {
	tb.Helper()
	for i, st := range steps {
		var err error
		dir := "recv"
		if st.send {
			dir = "send"
			err = s.Send(st.t)
		} else {
			err = s.Recv(st.t)
		}
		wantErr(tb, dir+" "+st.t.String(), err, st.want)
		if st.want == ErrStreamState {
			wantErr(tb, dir+" "+st.t.String(), err, ErrProtocol)
		}
		if got := s.State(); got != st.state {
			tb.Fatalf("step %d (%s %v): state %v, want %v", i, dir, st.t, got, st.state)
		}
		checkStateConsistent(tb, s)
	}
}

// checkStateConsistent checks Done, CanSend and CanRecv against State.
func checkStateConsistent(tb testing.TB, s *Stream) {
	tb.Helper()
	st := s.State()
	done := st == StateClosed || st == StateReset
	if s.Done() != done {
		tb.Fatalf("%v: Done() = %v", st, s.Done())
	}
	switch st {
	case StateOpen:
		if !s.CanSend() || !s.CanRecv() {
			tb.Fatalf("%v: CanSend %v CanRecv %v", st, s.CanSend(), s.CanRecv())
		}
	case StateHalfClosedLocal:
		if s.CanSend() || !s.CanRecv() {
			tb.Fatalf("%v: CanSend %v CanRecv %v", st, s.CanSend(), s.CanRecv())
		}
	case StateHalfClosedRemote:
		if !s.CanSend() || s.CanRecv() {
			tb.Fatalf("%v: CanSend %v CanRecv %v", st, s.CanSend(), s.CanRecv())
		}
	case StateClosed, StateReset:
		if s.CanSend() || s.CanRecv() {
			tb.Fatalf("%v: CanSend %v CanRecv %v", st, s.CanSend(), s.CanRecv())
		}
	}
}

const (
	opening  = StateOpening
	acc      = StateAccepting
	open     = StateOpen
	hcLocal  = StateHalfClosedLocal
	hcRemote = StateHalfClosedRemote
	closed   = StateClosed
	reset    = StateReset
)

var (
	bad  = ErrStreamState
	gone = ErrStreamClosed
)

func TestStreamOpener(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"local half-close first", []step{
			snd(TypeOpen, nil, opening),
			rcv(TypeCredit, nil, opening),
			rcv(TypeOpenOK, nil, open),
			snd(TypeData, nil, open),
			rcv(TypeData, nil, open),
			snd(TypeCredit, nil, open),
			rcv(TypeCredit, nil, open),
			snd(TypeFin, nil, hcLocal),
			snd(TypeData, bad, hcLocal),
			snd(TypeFin, bad, hcLocal),
			rcv(TypeData, nil, hcLocal),
			snd(TypeCredit, nil, hcLocal),
			rcv(TypeCredit, nil, hcLocal),
			rcv(TypeFin, nil, closed),
			rcv(TypeData, gone, closed),
			rcv(TypeCredit, gone, closed),
			rcv(TypeRst, gone, closed),
			snd(TypeData, gone, closed),
			snd(TypeRst, gone, closed),
		}},
		{"remote half-close first", []step{
			snd(TypeOpen, nil, opening),
			rcv(TypeOpenOK, nil, open),
			rcv(TypeFin, nil, hcRemote),
			rcv(TypeData, bad, hcRemote),
			rcv(TypeFin, bad, hcRemote),
			snd(TypeData, nil, hcRemote),
			rcv(TypeCredit, nil, hcRemote),
			snd(TypeFin, nil, closed),
			snd(TypeFin, gone, closed),
		}},
		{"optimistic DATA and FIN before OPEN_OK", []step{
			snd(TypeOpen, nil, opening),
			snd(TypeData, nil, opening),
			snd(TypeData, nil, opening),
			snd(TypeFin, nil, opening),
			snd(TypeData, bad, opening),
			rcv(TypeOpenOK, nil, hcLocal),
			rcv(TypeData, nil, hcLocal),
			rcv(TypeFin, nil, closed),
		}},
		{"open fail", []step{
			snd(TypeOpen, nil, opening),
			snd(TypeData, nil, opening),
			rcv(TypeOpenFail, nil, closed),
			snd(TypeData, gone, closed),
			rcv(TypeData, gone, closed),
			rcv(TypeOpenOK, gone, closed),
		}},
		{"open fail after FIN", []step{
			snd(TypeOpen, nil, opening),
			snd(TypeFin, nil, opening),
			rcv(TypeOpenFail, nil, closed),
		}},
		{"reset while opening", []step{
			snd(TypeOpen, nil, opening),
			rcv(TypeRst, nil, reset),
			rcv(TypeOpenOK, gone, reset),
			snd(TypeRst, gone, reset),
		}},
		{"local reset", []step{
			snd(TypeOpen, nil, opening),
			rcv(TypeOpenOK, nil, open),
			snd(TypeRst, nil, reset),
			rcv(TypeData, gone, reset),
			rcv(TypeFin, gone, reset),
			rcv(TypeRst, gone, reset),
		}},
		{"reset when half-closed", []step{
			snd(TypeOpen, nil, opening),
			rcv(TypeOpenOK, nil, open),
			snd(TypeFin, nil, hcLocal),
			rcv(TypeRst, nil, reset),
		}},
		{"DATA and FIN before OPEN_OK", []step{
			snd(TypeOpen, nil, opening),
			rcv(TypeData, bad, opening),
			rcv(TypeFin, bad, opening),
			rcv(TypeOpenOK, nil, open),
		}},
		{"accepter's frames", []step{
			snd(TypeOpen, nil, opening),
			snd(TypeOpenOK, bad, opening),
			snd(TypeOpenFail, bad, opening),
			rcv(TypeOpen, bad, opening),
			rcv(TypeOpenOK, nil, open),
			rcv(TypeOpenOK, bad, open),
			rcv(TypeOpenFail, bad, open),
			snd(TypeOpen, bad, open),
		}},
		{"link frames", []step{
			snd(TypePing, bad, opening),
			snd(TypePong, bad, opening),
			snd(TypeGoAway, bad, opening),
			snd(TypeHello, bad, opening),
			snd(0x42, bad, opening),
			rcv(TypePing, bad, opening),
			rcv(TypeGoAway, bad, opening),
			rcv(TypeHello, bad, opening),
			rcv(0, bad, opening),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewOpener(1)
			if s.ID != 1 || s.State() != StateOpening {
				t.Fatalf("new opener: id %d state %v", s.ID, s.State())
			}
			runSteps(t, s, tc.steps)
		})
	}
}

func TestStreamAccepter(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"remote half-close first", []step{
			rcv(TypeCredit, nil, acc),
			snd(TypeOpenOK, nil, open),
			snd(TypeData, nil, open),
			rcv(TypeData, nil, open),
			rcv(TypeFin, nil, hcRemote),
			rcv(TypeData, bad, hcRemote),
			snd(TypeData, nil, hcRemote),
			snd(TypeFin, nil, closed),
			rcv(TypeCredit, gone, closed),
		}},
		{"local half-close first", []step{
			snd(TypeOpenOK, nil, open),
			snd(TypeFin, nil, hcLocal),
			snd(TypeData, bad, hcLocal),
			rcv(TypeData, nil, hcLocal),
			rcv(TypeFin, nil, closed),
		}},
		{"early DATA and FIN while accepting", []step{
			rcv(TypeData, nil, acc),
			rcv(TypeData, nil, acc),
			rcv(TypeFin, nil, acc),
			rcv(TypeData, bad, acc),
			rcv(TypeFin, bad, acc),
			snd(TypeCredit, nil, acc),
			snd(TypeOpenOK, nil, hcRemote),
			snd(TypeData, nil, hcRemote),
			snd(TypeFin, nil, closed),
		}},
		{"open fail discards early data", []step{
			rcv(TypeData, nil, acc),
			rcv(TypeFin, nil, acc),
			snd(TypeOpenFail, nil, closed),
			rcv(TypeData, gone, closed),
			snd(TypeOpenOK, gone, closed),
		}},
		{"reset while accepting", []step{
			rcv(TypeData, nil, acc),
			rcv(TypeRst, nil, reset),
			snd(TypeOpenOK, gone, reset),
			rcv(TypeData, gone, reset),
		}},
		{"local reset instead of OPEN_FAIL", []step{
			snd(TypeRst, nil, reset),
		}},
		{"opener's frames", []step{
			snd(TypeOpen, bad, acc),
			rcv(TypeOpenOK, bad, acc),
			rcv(TypeOpenFail, bad, acc),
			rcv(TypeOpen, bad, acc),
			snd(TypeOpenOK, nil, open),
			snd(TypeOpenOK, bad, open),
			snd(TypeOpenFail, bad, open),
			snd(TypeOpen, bad, open),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewAccepter(2)
			if s.ID != 2 || s.State() != StateAccepting {
				t.Fatalf("new accepter: id %d state %v", s.ID, s.State())
			}
			runSteps(t, s, tc.steps)
		})
	}
}

// TestStreamAccepterSendsNothingBeforeOpenOK: the opener's Recv refuses
// DATA and FIN before OPEN_OK, so the accepter's Send must refuse to send
// them while it is still accepting.
func TestStreamAccepterSendsNothingBeforeOpenOK(t *testing.T) {
	for _, ty := range []Type{TypeData, TypeFin} {
		s := NewAccepter(2)
		wantErr(t, "send "+ty.String()+" while accepting", s.Send(ty), ErrStreamState)
	}
}

func TestStateString(t *testing.T) {
	want := map[State]string{
		StateOpening: "opening", StateAccepting: "accepting", StateOpen: "open",
		StateHalfClosedLocal: "half-closed(local)", StateHalfClosedRemote: "half-closed(remote)",
		StateClosed: "closed", StateReset: "reset", 99: "state(99)",
	}
	for s, name := range want {
		if s.String() != name {
			t.Errorf("State(%d).String() = %q, want %q", uint8(s), s.String(), name)
		}
	}
}
