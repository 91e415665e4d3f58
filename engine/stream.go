package engine

import "fmt"

// State is where a stream is in its life.
//
//	opener:   Opening --OPEN_OK--> Open     Opening --OPEN_FAIL--> Closed
//	accepter: Accepting --send OPEN_OK--> Open   Accepting --send OPEN_FAIL--> Closed
//	Open --send FIN--> HalfClosedLocal --recv FIN--> Closed
//	Open --recv FIN--> HalfClosedRemote --send FIN--> Closed
//	any --send or recv RST--> Reset
//
// The opener may send DATA and FIN while Opening (the first bytes do not wait
// a round trip); the accepter may receive them while Accepting. A FIN before
// the OPEN_OK is remembered and counted once the stream is open.
type State uint8

// Stream states.
const (
	StateOpening State = iota
	StateAccepting
	StateOpen
	StateHalfClosedLocal
	StateHalfClosedRemote
	StateClosed
	StateReset
)

var stateNames = [...]string{"opening", "accepting", "open", "half-closed(local)", "half-closed(remote)", "closed", "reset"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Stream is one stream's state machine. It decides whether a frame may be
// sent or received; it does no I/O.
type Stream struct {
	ID                  uint32
	opener              bool // we open it
	openSent            bool // we sent the OPEN
	established         bool // OPEN_OK sent or received
	localFin, remoteFin bool
	reset               bool
	failed              bool
	// Reason says why the stream ended, once it has.
	Reason Reason
}

// NewOpener returns the state of a stream we open.
func NewOpener(id uint32) *Stream { return &Stream{ID: id, opener: true} }

// NewAccepter returns the state of a stream the peer opened.
func NewAccepter(id uint32) *Stream { return &Stream{ID: id} }

// State is the stream's state.
func (s *Stream) State() State {
	switch {
	case s.reset:
		return StateReset
	case s.failed || (s.established && s.localFin && s.remoteFin):
		return StateClosed
	case !s.established && s.opener:
		return StateOpening
	case !s.established:
		return StateAccepting
	case s.localFin:
		return StateHalfClosedLocal
	case s.remoteFin:
		return StateHalfClosedRemote
	}
	return StateOpen
}

// Done reports whether the stream has ended (closed or reset).
func (s *Stream) Done() bool {
	st := s.State()
	return st == StateClosed || st == StateReset
}

// CanSend reports whether DATA may still be sent.
func (s *Stream) CanSend() bool { return !s.Done() && !s.localFin }

// CanRecv reports whether DATA may still arrive.
func (s *Stream) CanRecv() bool { return !s.Done() && !s.remoteFin }

// Send checks and records the sending of a frame of type t.
func (s *Stream) Send(t Type) error {
	if s.Done() {
		return fmt.Errorf("%w: send %v on %v stream %d", ErrStreamClosed, t, s.State(), s.ID)
	}
	switch t {
	case TypeOpen:
		if !s.opener || s.openSent {
			return s.bad("send", t)
		}
		s.openSent = true
	case TypeOpenOK, TypeOpenFail:
		if s.opener || s.established {
			return s.bad("send", t)
		}
		if t == TypeOpenOK {
			s.established = true
		} else {
			s.failed = true
		}
	case TypeData, TypeFin:
		// The opener may send right after its OPEN; the accepter only
		// after its OPEN_OK.
		if s.localFin || (s.opener && !s.openSent) || (!s.opener && !s.established) {
			return s.bad("send", t)
		}
		if t == TypeFin {
			s.localFin = true
		}
	case TypeRst:
		s.reset = true
	case TypeCredit:
	default:
		return s.bad("send", t)
	}
	return nil
}

// Recv checks and records the arrival of a frame of type t. ErrStreamClosed
// means the stream already ended and the frame is to be dropped; an
// ErrProtocol error means the peer broke the stream's rules and the stream
// is to be reset.
func (s *Stream) Recv(t Type) error {
	if s.Done() {
		return fmt.Errorf("%w: %v on %v stream %d", ErrStreamClosed, t, s.State(), s.ID)
	}
	switch t {
	case TypeOpenOK, TypeOpenFail:
		if !s.opener || s.established {
			return s.bad("receive", t)
		}
		if t == TypeOpenOK {
			s.established = true
		} else {
			s.failed = true
		}
	case TypeData:
		if s.remoteFin || (s.opener && !s.established) {
			return s.bad("receive", t)
		}
	case TypeFin:
		if s.remoteFin || (s.opener && !s.established) {
			return s.bad("receive", t)
		}
		s.remoteFin = true
	case TypeRst:
		s.reset = true
	case TypeCredit:
	default:
		return s.bad("receive", t)
	}
	return nil
}

func (s *Stream) bad(dir string, t Type) error {
	return fmt.Errorf("%w: %s %v on %v stream %d", ErrStreamState, dir, t, s.State(), s.ID)
}
