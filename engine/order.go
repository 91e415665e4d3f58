package engine

import "math"

// Stream order (capability CapStreamOrder, on CapSeq links). In link
// order a receiver delivers every sequenced frame after all those
// numbered before it, so on a link striped over a fast and a slow carrier
// a small frame of one stream that crossed the fast carrier waits for the
// bulk frame of another stream still crossing the slow one. When both
// HELLOs set CapStreamOrder, a sequenced frame may instead name the one
// frame it must follow — its stream's previous frame from this sender —
// and is delivered as soon as that one has been:
//
//	 0                                      12                              20              24
//	+--------------------------------------+-------------------------------+---------------+---------+
//	| header, flags FlagSeq|FlagAfter set  | sequence number u64           | after u32     | payload |
//	+--------------------------------------+-------------------------------+---------------+---------+
//
// after is how far back that frame is: the frame numbered seq-after (1 ≤
// after ≤ seq; seq-after = 0 names nothing, so the frame may be delivered
// at once). A frame without FlagAfter keeps link order. What follows what
// is the sender's choice; this implementation (orderer):
//
//   - a frame of stream 0, FIN, RST and OPEN_FAIL keep link order, so a
//     stream's end is never seen before anything sent ahead of it;
//   - OPEN follows the later of the previous OPEN and the previous FIN,
//     RST or OPEN_FAIL: OPENs arrive in id order, and a new stream is
//     never counted against the limit before an old one's end;
//   - every other frame of a stream (OPEN_OK, DATA, CREDIT) follows that
//     stream's previous frame.
//
// ACKs, resending, joins and the reorder limit are unchanged: received is
// still the number below which everything has been delivered, and a copy
// of a frame delivered ahead of it is dropped.
const (
	// CapStreamOrder is the capability bit of a peer that understands
	// FlagAfter: it delivers each stream's frames in that stream's order.
	CapStreamOrder uint32 = 1 << 6
	// FlagAfter is the header flag of a sequenced frame followed, after
	// its sequence number, by the distance back to the frame it follows.
	FlagAfter uint16 = 1 << 1
	// AfterLen is the length of that distance.
	AfterLen = 4
)

// orderer is the sending side of stream order: it gives each frame
// numbered the frame it must follow. It is used by Unacked's goroutine.
type orderer struct {
	lastOf   map[uint32]uint64 // each stream's last frame
	lastOpen uint64
	lastEnd  uint64 // the last FIN, RST or OPEN_FAIL
}

// prune bounds lastOf: past this many streams, those whose last frame is
// acknowledged are forgotten (naming no frame is as good as naming one
// delivered).
const orderPrune = 4096

// after returns f's After, f numbered already.
func (o *orderer) after(f *Frame) uint32 {
	var dep uint64
	switch {
	case f.Stream == 0:
		return 0
	case f.Type == TypeFin:
		o.lastEnd, o.lastOf[f.Stream] = f.Seq, f.Seq
		return 0
	case f.Type == TypeRst || f.Type == TypeOpenFail:
		o.lastEnd = f.Seq
		delete(o.lastOf, f.Stream)
		return 0
	case f.Type == TypeOpen:
		dep = max(o.lastOpen, o.lastEnd)
		o.lastOpen = f.Seq
	default:
		dep = o.lastOf[f.Stream]
	}
	o.lastOf[f.Stream] = f.Seq
	if f.Seq-dep > math.MaxUint32 {
		return 0 // too far back to name: link order is never wrong
	}
	return uint32(f.Seq - dep)
}

// acked forgets, when lastOf has grown, the streams whose last frame the
// peer has acknowledged.
func (o *orderer) acked(received uint64) {
	if len(o.lastOf) < orderPrune {
		return
	}
	for s, seq := range o.lastOf {
		if seq <= received {
			delete(o.lastOf, s)
		}
	}
}
