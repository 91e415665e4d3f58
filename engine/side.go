package engine

import (
	"errors"
	"time"
)

// StreamSide is one stream's own decisions at this side of a link, in one
// value: its state machine (the embedded Stream), its receive window, and
// the verdict on each frame the peer sends it (Arrive). Session keeps one
// per stream, and so does each of the daemon's Stream actors, so that the
// code the deterministic simulator checks is the code the daemon runs
// (docs/ENGINE.md). The link's part — ids, the verdict on OPENs, the send
// queue, numbering and resend — is not here: it is the Link's and the
// Scheduler's.
//
// A StreamSide is used by one goroutine (its owner's).
type StreamSide struct {
	*Stream
	recv  RecvWindow
	grown uint32 // what the window took from a Budget beyond its first size
}

// NewStreamSide returns the side of the stream whose state is st, with a
// receive window of window bytes that may grow to maxWindow.
func NewStreamSide(st *Stream, window, maxWindow uint32) StreamSide {
	return StreamSide{Stream: st, recv: NewRecvWindow(window, maxWindow)}
}

// Budget is what a link lets its streams' receive windows grow by,
// together: Take returns the part of n it grants, Give takes back what a
// stream that ended had grown by.
type Budget interface {
	Take(n uint32) uint32
	Give(n uint32)
}

// Arrival is what a frame from the peer means for its stream.
type Arrival uint8

// The kinds of Arrival.
const (
	// ArriveDrop is a frame that crossed the stream's end on the wire (a
	// reset, a refusal, a FIN both ways): it is dropped, and nothing else
	// changes.
	ArriveDrop Arrival = iota
	// ArriveAccepted is the peer's OPEN_OK: the stream we opened is up.
	ArriveAccepted
	// ArriveRefused is the peer's OPEN_FAIL, with its Reason.
	ArriveRefused
	// ArriveData is DATA within the window: its payload is for the local
	// socket.
	ArriveData
	// ArriveFin is the peer's end of sending.
	ArriveFin
	// ArriveReset is the peer's RST, with its Reason.
	ArriveReset
	// ArriveBroken is a frame that breaks the stream's rules (its state
	// does not allow it, or DATA beyond the window): the stream is to be
	// reset with the Reason given, which names the rule. Only the stream
	// ends; the link and its other streams go on.
	ArriveBroken
)

var arrivalNames = [...]string{"drop", "accepted", "refused", "data", "fin", "reset", "broken"}

func (a Arrival) String() string {
	if int(a) < len(arrivalNames) {
		return arrivalNames[a]
	}
	return "arrival(?)"
}

// Arrive decides on f, an OPEN_OK, OPEN_FAIL, DATA, FIN or RST the peer
// sent for this stream, and records it. The Reason is the peer's
// (ArriveRefused, ArriveReset) or the one to reset the stream with
// (ArriveBroken). Arrive does not take f: the caller releases it, or hands
// its payload on (ArriveData).
func (s *StreamSide) Arrive(f *Frame) (Arrival, Reason) {
	err := s.Stream.Recv(f.Type)
	if errors.Is(err, ErrStreamClosed) {
		return ArriveDrop, Reason{}
	}
	if err != nil {
		return ArriveBroken, Reason{Code: CodeProtocol, Text: err.Error()}
	}
	switch f.Type {
	case TypeOpenOK:
		return ArriveAccepted, Reason{}
	case TypeOpenFail, TypeRst:
		r, _ := ParseReason(f.Bytes()) // ClassifyInbound checked it
		if f.Type == TypeRst {
			return ArriveReset, r
		}
		return ArriveRefused, r
	case TypeData:
		if err := s.recv.Receive(f.Len()); err != nil {
			return ArriveBroken, Reason{Code: CodeFlowControl, Text: err.Error()}
		}
		return ArriveData, Reason{}
	}
	return ArriveFin, Reason{}
}

// Early accounts for the n bytes an accepted OPEN carried, which Opens
// checked against the window.
func (s *StreamSide) Early(n int) error { return s.recv.Receive(n) }

// Consumed says the local socket took n bytes, with queued bytes still
// waiting for it, at now, with rtt the link's round trip (0: not known),
// and returns the CREDIT to send the peer (0: none yet, or the stream
// takes no more DATA). The window grows when the reader keeps up
// (RecvWindow.Consumed), by what budget allows (nil: no bound but the
// window's maximum).
func (s *StreamSide) Consumed(n, queued int, now time.Time, rtt time.Duration, budget Budget) uint32 {
	c, grow := s.recv.Consumed(n, queued, now, rtt)
	if grow > 0 {
		if budget != nil {
			grow = budget.Take(grow)
		}
		g := s.recv.Grow(grow)
		s.grown += g
		c += g
	}
	if !s.CanRecv() {
		return 0
	}
	return c
}

// Window is the receive window's size now.
func (s *StreamSide) Window() uint32 { return s.recv.Size() }

// GiveBack returns to budget what the window grew by, once the stream has
// ended.
func (s *StreamSide) GiveBack(budget Budget) {
	if budget != nil && s.grown > 0 {
		budget.Give(s.grown)
	}
	s.grown = 0
}
