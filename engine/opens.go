package engine

import (
	"fmt"
	"math"
	"strconv"
)

// Opens decides which streams a link opens and accepts: the ids of ours,
// the legality of the peer's OPENs (id parity and order), and the refusals
// (policy, unknown reverse forward, shutting down, the stream limit, first
// bytes beyond the window). It counts the streams open against the limit:
// from OPEN until the stream has ended on the wire both ways. No I/O; the
// Link applies its verdicts.
type Opens struct {
	role       Role
	maxStreams int
	next       uint32 // our next stream id
	lastPeer   uint32 // the highest id the peer opened
	open       map[uint32]bool
}

// NewOpens makes the table of a link on which this side has role, with at
// most maxStreams open at once.
func NewOpens(role Role, maxStreams int) *Opens {
	return &Opens{role: role, maxStreams: maxStreams, next: role.FirstStreamID(), open: make(map[uint32]bool)}
}

// Open is how many streams count against the limit now.
func (t *Opens) Open() int { return len(t.open) }

// Ended takes a stream off the count: it ended on the wire both ways (or
// was reset). Ending one not counted does nothing.
func (t *Opens) Ended(id uint32) { delete(t.open, id) }

// Policy is what the Link's --allow-target says; the engine asks, it does
// not parse patterns.
type Policy interface{ Allows(target string) bool }

// PolicyRule names the rule of policy that refuses target, for a
// refusal's text: the label of a limit joined to it (a policy with a
// Refuser method, as forward.TargetPolicy), or "--allow-target policy".
func PolicyRule(policy Policy, target string) string {
	if r, ok := policy.(interface {
		Refuser(string) (string, bool)
	}); ok {
		if label, refused := r.Refuser(target); refused && label != "" {
			return label
		}
	}
	return "--allow-target policy"
}

// ReverseForward is one of this side's -R: where a connection the peer
// accepted for it goes.
type ReverseForward struct {
	Target string
	UDP    bool
}

// OpenRequest is the context of a peer's OPEN: what the Link's
// configuration says now.
type OpenRequest struct {
	// Policy is the --allow-target the peer's targets are checked against.
	Policy Policy
	// Reverse names this side's -R by wire id (nil or false: none such).
	Reverse func(id uint32) (ReverseForward, bool)
	// RecvWindow is the window the peer may fill with first bytes.
	RecvWindow uint32
	// Closing refuses every OPEN: the link is shutting down.
	Closing bool
}

// OpenVerdict is what to do with a peer's OPEN. Exactly one of Err (a
// protocol error: close the link), Refuse (send it: OPEN_FAIL or RST) and
// accepting (both nil) holds.
type OpenVerdict struct {
	Err    error
	Refuse *Frame
	// Cause names the rule that refused, for logs and counters:
	// "allow-target", "unknown forward", "target kind", "shutdown",
	// "max-streams", "window".
	Cause string
	// Target is where an accepted stream goes; Datagram is a UDP one.
	Target   string
	Datagram bool
	// Open is the parsed OPEN, its Data still in the frame's payload.
	Open Open
}

// PeerOpen decides on an OPEN the peer sent on stream id with payload p.
// An accepted stream is counted open; a refused one is not.
func (t *Opens) PeerOpen(id uint32, p []byte, req OpenRequest) OpenVerdict {
	peerRole := RoleDialer
	if t.role == RoleDialer {
		peerRole = RoleAccepter
	}
	if !peerRole.Owns(id) || id <= t.lastPeer {
		return OpenVerdict{Err: fmt.Errorf("%w: OPEN of stream %d (peer is %v, last id %d)", ErrBadStreamID, id, peerRole, t.lastPeer)}
	}
	t.lastPeer = id
	o, err := ParseOpen(p)
	if err != nil {
		return OpenVerdict{Err: err}
	}
	refuse := func(cause string, typ Type, code Code, text string) OpenVerdict {
		return OpenVerdict{Cause: cause, Refuse: NewReason(typ, id, code, text), Open: o}
	}
	v := OpenVerdict{Target: o.Target, Open: o}
	switch o.Kind {
	case TargetDial, TargetUDP:
		v.Datagram = o.Kind == TargetUDP
		if req.Policy == nil || !req.Policy.Allows(o.Target) {
			return refuse("allow-target", TypeOpenFail, CodeRefused,
				fmt.Sprintf("target %s is not allowed by the peer's %s", o.Target, PolicyRule(req.Policy, o.Target)))
		}
	case TargetForward: // a connection to one of our -R: its target is ours to choose
		n, err := strconv.ParseUint(o.Target, 10, 32)
		var fwd ReverseForward
		ok := false
		if err == nil && req.Reverse != nil {
			fwd, ok = req.Reverse(uint32(n))
		}
		if !ok { // never bound, or removed by a reload
			return refuse("unknown forward", TypeOpenFail, CodeUnknownTarget, "no reverse forward "+o.Target)
		}
		v.Target, v.Datagram = fwd.Target, fwd.UDP
	default:
		return refuse("target kind", TypeOpenFail, CodeUnknownTarget, fmt.Sprintf("target kind %d", o.Kind))
	}
	if req.Closing {
		return refuse("shutdown", TypeOpenFail, CodeShutdown, "shutting down")
	}
	if len(t.open) >= t.maxStreams {
		return refuse("max-streams", TypeOpenFail, CodeTooManyStream, fmt.Sprintf("limit of %d streams per link reached", t.maxStreams))
	}
	if len(o.Data) > int(req.RecvWindow) {
		return refuse("window", TypeRst, CodeFlowControl, "first bytes exceed the window")
	}
	t.open[id] = true
	return v
}

// NextID allocates the id of a stream this side opens, counted open.
func (t *Opens) NextID() (uint32, error) {
	if len(t.open) >= t.maxStreams {
		return 0, fmt.Errorf("%w: %d open", ErrStreamLimit, t.maxStreams)
	}
	if t.next > math.MaxUint32-2 {
		return 0, ErrIDsExhausted
	}
	id := t.next
	t.next += 2
	t.open[id] = true
	return id, nil
}
