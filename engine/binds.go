package engine

import "fmt"

// The verdict on a peer's BIND (its -R): whether this side listens for it,
// decided with no I/O. The listening itself, and its failure (a port in
// use: CodeBindFailed), are the caller's.

// BindRequest is what a BIND is checked against.
type BindRequest struct {
	// Bound tells whether a BIND with this id is already listening.
	Bound func(id uint32) bool
	// Count is how many BINDs of the link are listening; MaxBinds is the
	// most it may have (--max-binds).
	Count, MaxBinds int
	// AllowListen is this side's --allow-listen.
	AllowListen Policy
	// PermitListen is the permit-listen of the peer's authorized key (nil:
	// the peer has no such entry to check, so only AllowListen applies).
	PermitListen Policy
}

// BindVerdict is what to do with a peer's BIND. Refuse (nil: listen) is
// the BIND_REPLY to send, Cause names the rule that refused it (for logs
// and metrics: "bad-bind", "max-binds", "allow-listen", "permit-listen"),
// and Reason says it from this side's point of view, for its own log (the
// reply's text speaks to the peer).
type BindVerdict struct {
	Refuse *Frame
	Cause  string
	Reason string
}

// PeerBind decides on b, a BIND the peer sent.
func PeerBind(b Bind, req BindRequest) BindVerdict {
	refuse := func(cause, reason, text string) BindVerdict {
		return BindVerdict{Cause: cause, Reason: reason,
			Refuse: NewBindReply(BindReply{ID: b.ID, Code: CodeRefused, Text: text})}
	}
	switch {
	case b.ID == 0 || b.Proto > 1 || req.Bound != nil && req.Bound(b.ID):
		text := fmt.Sprintf("bad forward id %d or protocol %d", b.ID, b.Proto)
		return refuse("bad-bind", text, text)
	case req.Count >= req.MaxBinds:
		text := fmt.Sprintf("limit of %d reverse forwards per link reached (--max-binds)", req.MaxBinds)
		return refuse("max-binds", text, text)
	case req.AllowListen != nil && !req.AllowListen.Allows(b.Addr):
		return refuse("allow-listen", "not allowed by this side's --allow-listen policy",
			fmt.Sprintf("listening on %s is not allowed by the peer's --allow-listen policy", b.Addr))
	case req.PermitListen != nil && !req.PermitListen.Allows(b.Addr):
		return refuse("permit-listen", "not allowed by the permit-listen of the peer's key in the authorized keys",
			fmt.Sprintf("listening on %s is not allowed by the permit-listen for your key", b.Addr))
	}
	return BindVerdict{}
}

// PolicyFunc is a Policy made of a function.
type PolicyFunc func(target string) bool

// Allows calls f.
func (f PolicyFunc) Allows(target string) bool { return f(target) }
