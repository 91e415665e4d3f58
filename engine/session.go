package engine

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Session is one peer's side of an established link, as a state machine
// with no I/O: the stream layer and the link's sequencing composed from
// Opens, StreamSide, Grants, Queue, Resender and Reorder — the pieces the
// daemon's actors own too.
//
// What goes in: frames received per carrier (Receive), local events (Open,
// Accept, Refuse, Write, CloseWrite, Reset, Consumed, GoAway), a carrier
// lost (CarrierLost), and the time, passed in where a decision needs it.
// What comes out: the frames to send, pulled per carrier (Next, Ack), and
// events for the local side (Events): a stream the peer opened, bytes to
// deliver, a FIN, a reset or refusal with its reason, credit to send
// more, the peer going away. Every decision is here, so the deterministic
// simulator (sim_test.go) drives two Sessions over a simulated network and
// checks them step by step, and FuzzSession feeds one arbitrary frames.
//
// Which carrier each frame takes is the Sender's Stripe, as in the
// daemon's Scheduler: the caller says which carriers are up (AddCarrier,
// CarrierLost), what each one's writer took (Written) and what its PINGs
// measured (CarrierRTT), and passes the time in (Tick). The carrier
// handshake is Handshake's, liveness Silence's. The daemon's actors own
// the same pieces Session composes (docs/ENGINE.md).
//
// Ownership: Receive takes over the frame it is given. A frame Next or Ack
// returns is the caller's to write and then Release; the Session keeps a
// share of each sequenced frame until the peer acknowledges it. An
// EventData's Frame is the caller's to deliver and Release.
//
// A Session is used by one goroutine.
type Session struct {
	cfg     SessionConfig
	opens   *Opens
	streams map[uint32]*sessionStream
	// out is the sending side, the daemon's Scheduler's: the queue, what
	// each stream's local writer may still write (the peer's credit,
	// within the link's send limit), numbering and resend (CapSeq), and
	// the carrier each frame takes.
	out      *Sender
	granted  []Grant  // scratch for Grants.Next
	reorder  *Reorder // CapSeq: what arrived out of order
	carriers map[int]*sessionCarrier
	now      time.Time // the last Tick
	away     bool      // we said GOAWAY: no more opens either way
	peer     *Reason   // the peer's GOAWAY
	resent   int
	events   []Event
	err      error // the first protocol error: the link ends with it
}

// SessionConfig is what a Session is set up with: what the handshake
// agreed and this side's limits.
type SessionConfig struct {
	Role       Role
	MaxStreams int    // streams open at once, both ways
	Window     uint32 // each stream's initial receive window (ours)
	PeerWindow uint32 // each stream's initial send window (the peer's HELLO)
	// SendLimit is the most the link holds for sending, over every
	// stream (Grants' limit; 0: one MiB), so a peer that grants much and
	// reads little costs a bounded amount.
	SendLimit int64
	// HighWater is the most a carrier's writer holds before the Stripe
	// passes it over (0: 256 KiB); AckDelay the longest the peer holds an
	// arrival before it acknowledges it.
	HighWater int
	AckDelay  time.Duration
	MaxWindow uint32 // how far a receive window may grow
	MaxData   int    // the most payload one DATA frame carries
	Policy    Policy // the targets the peer may open (nil: none)
	// Seq is CapSeq: frames are numbered, acknowledged and resent, so the
	// link may ride several carriers. Reorder is the most bytes held out of
	// order here; PeerReorder the peer's, which bounds what is sent and
	// not yet acknowledged.
	Seq                  bool
	Reorder, PeerReorder int
	// StreamOrder is CapStreamOrder (on a Seq link): each frame names the
	// one it follows, so the peer delivers each stream in its own order
	// rather than the link's (order.go).
	StreamOrder bool
}

// sessionStream is one stream's state in a Session.
type sessionStream struct {
	side   StreamSide // state, receive window, the verdict on the peer's frames
	allow  int64      // what Grants handed the local writer and Write has not used
	unread int        // delivered, not yet consumed by the local reader
	reset  bool       // ended by a reset or refusal (either side)
}

// EventKind says what an Event tells the local side.
type EventKind uint8

// The kinds of Event.
const (
	// EventOpened is a stream the peer opened to Target: Accept or Refuse it.
	EventOpened EventKind = iota + 1
	// EventAccepted is the peer's OPEN_OK for a stream we opened.
	EventAccepted
	// EventData is bytes for the stream's local socket, in Frame.
	EventData
	// EventFin is the peer's end of sending on the stream.
	EventFin
	// EventReset is the stream reset or refused by the peer, with Reason.
	EventReset
	// EventWritable is a grant (the peer's credit, within the link's send
	// limit): Write takes more now.
	EventWritable
	// EventGoAway is the peer going away, with Reason: it takes no new
	// streams.
	EventGoAway
	// EventRefused is a peer's OPEN of Target that this side's rules
	// refused at once (Cause: the rule, as OpenVerdict's; Reason: what the
	// peer was told).
	EventRefused
)

// Event is something the local side must act on.
type Event struct {
	Kind   EventKind
	Stream uint32
	Target string // EventOpened, EventRefused
	Frame  *Frame // EventData: the caller's, to deliver and Release
	Reason Reason // EventReset, EventGoAway, EventRefused
	// Cause is, for EventRefused, the rule that refused the OPEN (as
	// OpenVerdict's); for EventReset, set only when this side reset the
	// stream because the peer broke its rules: "protocol" or
	// "flow-control" (Reason is then what the peer was sent).
	Cause string
}

// Errors of a Session's local calls.
var (
	// ErrNoStream is a call for a stream the Session does not have.
	ErrNoStream = errors.New("no such stream")
	// ErrGoingAway is an Open after either side said GOAWAY.
	ErrGoingAway = errors.New("link going away")
	// ErrLinkDown is a call after Down: the link is gone for good. It
	// also matches what Down's reason code stands for (Code.Err).
	ErrLinkDown = errors.New("link down")
)

// NewSession returns the Session of a link just up.
func NewSession(cfg SessionConfig) *Session {
	limit := cfg.SendLimit
	if limit <= 0 {
		limit = 1 << 20
	}
	hw := cfg.HighWater
	if hw <= 0 {
		hw = 256 << 10
	}
	s := &Session{cfg: cfg, opens: NewOpens(cfg.Role, cfg.MaxStreams), streams: map[uint32]*sessionStream{},
		carriers: map[int]*sessionCarrier{},
		out: NewSender(SenderConfig{Limit: limit, PerStream: DefaultGrantPerStream, Seq: cfg.Seq, PeerReorder: cfg.PeerReorder,
			StreamOrder: cfg.StreamOrder, HighWater: hw, MaxWire: max(cfg.MaxData, 1) + MaxHeaderLen, AckDelay: cfg.AckDelay})}
	if cfg.Seq {
		s.reorder = NewReorder(cfg.Reorder)
	}
	return s
}

// Err is the protocol error that ended the Session, or nil.
func (s *Session) Err() error { return s.err }

// Events returns, and forgets, what happened since the last call.
func (s *Session) Events() []Event {
	ev := s.events
	s.events = nil
	return ev
}

// StreamInfo is what a Session knows of one stream.
type StreamInfo struct {
	State  State
	Reset  bool // ended by a reset or refusal, from either side
	Unread int  // delivered bytes the local reader has not consumed
}

// Stream is stream id's state; false when the Session does not have it.
func (s *Session) Stream(id uint32) (StreamInfo, bool) {
	st := s.streams[id]
	if st == nil {
		return StreamInfo{}, false
	}
	return StreamInfo{State: st.side.State(), Reset: st.reset, Unread: st.unread}, true
}

// Forget drops a stream that has ended (Done) once the local side is done
// with it; a frame for it that comes later is dropped. It reports whether
// the stream had ended.
func (s *Session) Forget(id uint32) bool {
	st := s.streams[id]
	if st == nil || !st.side.Done() {
		return false
	}
	delete(s.streams, id)
	return true
}

// Resent is how many frames were put in line to go again because their
// carrier was lost or stalled.
func (s *Session) Resent() int { return s.resent }

// settle counts a stream that has ended out of the streams open, so the
// stream limit frees its place.
func (s *Session) settle(id uint32, st *sessionStream) {
	if st.side.Done() {
		s.opens.Ended(id)
		s.out.Grants.Forget(id)
		st.allow = 0
	}
}

// grant hands the local writers what Grants allows now, each with an
// EventWritable.
func (s *Session) grant() {
	s.granted = s.out.Grants.Next(s.granted[:0])
	for _, g := range s.granted {
		if st := s.streams[g.Stream]; st != nil {
			st.allow += g.N
			s.events = append(s.events, Event{Kind: EventWritable, Stream: g.Stream})
		}
	}
}

// Sending is what the link holds for sending (granted to writers and not
// yet written, plus DATA queued) and the most it may: SendLimit plus each
// stream's IdleAllowance.
func (s *Session) Sending() (held, bound int64) {
	return s.out.Grants.Held(), s.out.Grants.Limit() + int64(len(s.streams))*IdleAllowance
}

// Queued is the wire bytes waiting to be sent (the link's send budget
// bounds it) and, on a CapSeq link, Unacked the wire bytes sent and not yet
// acknowledged.
func (s *Session) Queued() (queued, unacked int) {
	if rs := s.out.Resender(); rs != nil {
		unacked = rs.Bytes()
	}
	return s.out.Queue.Bytes(), unacked
}

// Held is the wire bytes held out of order (CapSeq).
func (s *Session) Held() int {
	if s.reorder == nil {
		return 0
	}
	return s.reorder.Held()
}

// Open starts a stream to target (OPEN with kind), and returns its id.
func (s *Session) Open(kind TargetKind, target string) (uint32, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.away || s.peer != nil {
		return 0, ErrGoingAway
	}
	id, err := s.opens.NextID()
	if err != nil {
		return 0, err
	}
	st := s.newStream(NewOpener(id))
	_ = st.side.Send(TypeOpen) // a new opener may always send its OPEN
	s.out.Push(NewOpen(id, kind, target, nil))
	s.out.Grants.Attach(id, s.cfg.PeerWindow, 0) // the opener may write at once
	s.grant()
	return id, nil
}

func (s *Session) newStream(st *Stream) *sessionStream {
	ss := &sessionStream{side: NewStreamSide(st, s.cfg.Window, s.cfg.MaxWindow)}
	s.streams[st.ID] = ss
	s.out.Grants.Open(st.ID, s.cfg.PeerWindow) // the peer's CREDITs count from now
	return ss
}

// Accept answers the peer's OPEN of id with OPEN_OK: its target was
// reached.
func (s *Session) Accept(id uint32) error {
	if s.err != nil { // Down, or the peer broke the protocol: the link's error, not the stream's
		return s.err
	}
	st := s.streams[id]
	if st == nil {
		return fmt.Errorf("%w: %d", ErrNoStream, id)
	}
	if err := st.side.Send(TypeOpenOK); err != nil {
		return err
	}
	s.out.Push(newFrame(TypeOpenOK, id, nil))
	s.out.Grants.Attach(id, s.cfg.PeerWindow, 0)
	s.grant()
	return nil
}

// Refuse answers the peer's OPEN of id with OPEN_FAIL: its target could
// not be reached, for reason.
func (s *Session) Refuse(id uint32, code Code, reason string) error {
	if s.err != nil { // Down, or the peer broke the protocol: the link's error, not the stream's
		return s.err
	}
	st := s.streams[id]
	if st == nil {
		return fmt.Errorf("%w: %d", ErrNoStream, id)
	}
	if err := st.side.Send(TypeOpenFail); err != nil {
		return err
	}
	s.endStream(id, st)
	s.settle(id, st)
	s.out.Push(NewReason(TypeOpenFail, id, code, reason))
	return nil
}

// Write queues what of p the stream's grant allows (the peer's credit,
// within the link's send limit: Grants), as DATA frames of at most MaxData
// bytes, and returns how many bytes it took; the rest waits for an
// EventWritable.
func (s *Session) Write(id uint32, p []byte) (int, error) {
	if s.err != nil { // Down, or the peer broke the protocol: the link's error, not the stream's
		return 0, s.err
	}
	st := s.streams[id]
	if st == nil {
		return 0, fmt.Errorf("%w: %d", ErrNoStream, id)
	}
	if !st.side.CanSend() {
		return 0, fmt.Errorf("%w: stream %d is %v", ErrStreamClosed, id, st.side.State())
	}
	n := 0
	for n < len(p) && st.allow > 0 {
		k := int(min(int64(len(p)-n), st.allow, int64(max(s.cfg.MaxData, 1))))
		if err := st.side.Send(TypeData); err != nil {
			return n, err
		}
		if !s.out.Push(newFrame(TypeData, id, p[n:n+k])) { // cannot be: a grant is within the peer's credit
			break
		}
		st.allow -= int64(k)
		n += k
	}
	s.grant()
	return n, nil
}

// CloseWrite ends our sending on the stream (FIN), after what Write took.
func (s *Session) CloseWrite(id uint32) error {
	if s.err != nil { // Down, or the peer broke the protocol: the link's error, not the stream's
		return s.err
	}
	st := s.streams[id]
	if st == nil {
		return fmt.Errorf("%w: %d", ErrNoStream, id)
	}
	if err := st.side.Send(TypeFin); err != nil {
		return err
	}
	s.out.Grants.Returned(id, st.allow) // nothing more to write: the room is the others'
	st.allow = 0
	s.settle(id, st)
	s.out.Push(newFrame(TypeFin, id, nil))
	s.grant()
	return nil
}

// Reset aborts the stream: what it had queued is dropped, and a RST with
// code and reason follows.
func (s *Session) Reset(id uint32, code Code, reason string) error {
	if s.err != nil { // Down, or the peer broke the protocol: the link's error, not the stream's
		return s.err
	}
	st := s.streams[id]
	if st == nil {
		return fmt.Errorf("%w: %d", ErrNoStream, id)
	}
	if err := st.side.Send(TypeRst); err != nil {
		return err
	}
	s.endStream(id, st)
	s.settle(id, st)
	s.out.Push(NewReason(TypeRst, id, code, reason))
	s.grant() // what its queued DATA held is the other writers' again
	return nil
}

// endStream drops what a stream cut short had queued or not yet delivered.
func (s *Session) endStream(id uint32, st *sessionStream) {
	st.reset, st.unread = true, 0
	s.out.Drop(id)
	st.allow = 0
}

// Consumed says the local socket took n bytes of what EventData delivered
// on stream id, at now, with rtt the link's round trip (0: not known); it
// queues the CREDIT this earns the peer, and grows the window when the
// reader keeps up (RecvWindow.Consumed). Growth is not bounded by a link
// budget here: the caller's limits are MaxWindow.
func (s *Session) Consumed(id uint32, n int, now time.Time, rtt time.Duration) {
	st := s.streams[id]
	if st == nil || st.reset || n <= 0 {
		return
	}
	n = min(n, st.unread)
	st.unread -= n
	if c := st.side.Consumed(n, st.unread, now, rtt, nil); c > 0 {
		s.out.Push(NewCredit(id, c))
	}
}

// GoAway makes this side open no more streams and refuse the peer's new
// ones; the streams open finish. The GOAWAY frame is not sequenced and
// goes on every carrier: the caller sends one on each
// (NewReason(TypeGoAway, ...)).
func (s *Session) GoAway() { s.away = true }

// Down ends the link for good: its carriers are all gone and the resume
// window passed (CodeResumeExpired), or the peer no longer has it. Every
// stream that had not ended is reset with r, each with an EventReset (a
// stream cut short reaches its client as a reset, never as a clean end);
// every frame held is released; and every later call returns an error
// matching ErrLinkDown and what r.Code stands for.
func (s *Session) Down(r Reason) {
	if s.err != nil {
		return
	}
	s.err = fmt.Errorf("%w: %v", ErrLinkDown, r)
	if e := r.Code.Err(); e != nil {
		s.err = fmt.Errorf("%w: %w (%s)", ErrLinkDown, e, r.Text)
	}
	for _, id := range slices.Sorted(maps.Keys(s.streams)) { // in order: a seed replays
		st := s.streams[id]
		if st.side.Done() {
			continue
		}
		_ = st.side.Send(TypeRst) // nothing goes on the wire: there is none
		s.endStream(id, st)
		s.settle(id, st)
		s.events = append(s.events, Event{Kind: EventReset, Stream: id, Reason: r})
	}
	s.Close()
}
