package engine

// Grants decides how much each stream's reader may read from its local
// socket now. The peer's CREDIT says how much a stream may send; what a
// reader reads before a carrier takes it waits in the sender's queue, so
// the peer's credit alone would let a peer that announces a huge window
// and never reads make this side read its local sockets into memory
// without end. Grants hands a reader the peer's credit only while what the
// link holds for sending stays under two limits:
//
//   - per stream, what it was granted and has not sent yet plus what it
//     has waiting in the queue stays under PerStream, enough to keep every
//     carrier of a link busy;
//   - per link, what streams hold beyond IdleAllowance each, summed,
//     stays under Limit, whatever the peer announced. A stream held back
//     by it waits in line and is served, in turn, as the queue drains.
//
// A stream may always hold up to IdleAllowance, full link or not, so a new
// stream starts at once, and what it holds within its allowance takes no
// room from the others: a thousand idle streams do not starve a busy one.
// A reader whose socket has nothing to read gives back what it holds
// beyond its allowance (Returned). What a link holds is thus at most Limit
// plus IdleAllowance per stream.
//
// It also keeps the credit of a stream that is known but whose reader is
// not ready yet (a CREDIT may come any time after OPEN, before this side
// has dialled and answered OPEN_OK), so early credit is never lost.
//
// Grants does no I/O and reads no clock. It is not safe for concurrent use:
// the Scheduler actor owns it.
type Grants struct {
	limit, perStream int64
	held             int64 // granted and not yet DATA, plus DATA queued, over every stream
	excess           int64 // what of held is beyond each stream's IdleAllowance: Limit bounds it
	streams          map[uint32]*grantState
	waiting          []uint32 // held back by the link limit, in turn order
	spare            []uint32 // the other half of waiting's double buffer
	ready            []uint32 // whose own limit or credit changed
}

type grantState struct {
	excess   int64 // what it holds beyond IdleAllowance, as counted in Grants.excess
	step     int64 // what its reader may hold: MaxGrant at first, doubled when it ran dry, halved (to IdleAllowance at least) when it went idle
	win      SendWindow
	granted  int64 // handed to the reader, not back as DATA yet
	queued   int64 // DATA in the queue, not handed to a carrier yet
	attached bool  // the reader is ready for grants
	waiting  bool  // in Grants.waiting
	ready    bool  // in Grants.ready
}

// Grant is credit for one stream's reader.
type Grant struct {
	Stream uint32
	N      int64
}

// Grant limits.
const (
	// DefaultGrantPerStream is what one stream may hold for sending: 4 MiB
	// keeps 16 carriers' queues full.
	DefaultGrantPerStream = 4 << 20
	// MinGrant is the smallest grant handed out beyond IdleAllowance
	// while more is owed: a reader given a few bytes at a time would make
	// a frame of each.
	MinGrant = DefaultMaxPayload
	// MaxGrant is the most one grant hands out while streams wait for
	// room: one read's worth, so that they take turns at the room that
	// frees up.
	MaxGrant = 4 * DefaultMaxPayload
	// IdleAllowance is what a stream may hold whatever the link holds, and
	// what an idle reader keeps of its grant.
	IdleAllowance = 32 << 10
)

// NewGrants returns grants holding at most limit bytes for sending per
// link and perStream per stream.
func NewGrants(limit, perStream int64) *Grants {
	if perStream > limit {
		perStream = limit
	}
	return &Grants{limit: limit, perStream: perStream, streams: make(map[uint32]*grantState)}
}

// Held is what the link holds for sending: granted to readers and not yet
// DATA, plus DATA queued.
func (g *Grants) Held() int64 { return g.held }

// Limit is the most the link holds for sending.
func (g *Grants) Limit() int64 { return g.limit }

// Open makes stream id known with the peer's initial window, before its
// reader is ready: CREDITs for it are kept from now on. Opening a known
// stream does nothing.
func (g *Grants) Open(id uint32, window uint32) {
	if g.streams[id] == nil {
		g.streams[id] = &grantState{win: NewSendWindow(window)}
	}
}

// Attach says stream id's reader is ready, after used bytes of its window
// went in its OPEN; an unknown stream is opened with window. Next has its
// first grant.
func (g *Grants) Attach(id uint32, window uint32, used int) {
	g.Open(id, window)
	st := g.streams[id]
	st.win.Take(used)
	st.attached = true
	st.step = MaxGrant
	g.markReady(id, st)
}

// Credit adds a CREDIT of n the peer sent for stream id. A CREDIT for a
// stream not known (it ended while the CREDIT was on the wire) is dropped.
// A CREDIT that overflows the window is the peer's error.
func (g *Grants) Credit(id uint32, n uint32) error {
	st := g.streams[id]
	if st == nil {
		return nil
	}
	if err := st.win.Add(n); err != nil {
		return err
	}
	g.markReady(id, st)
	return nil
}

// Data accounts for a DATA frame of n bytes the reader made from its
// grant; the frame goes in the queue. It reports false when the stream is
// gone or the frame exceeds its credit: the caller drops the frame.
func (g *Grants) Data(id uint32, n int) bool {
	st := g.streams[id]
	if st == nil || !st.win.Take(n) {
		return false
	}
	k := int64(n)
	if k > st.granted { // more than granted: the reader's mistake; count it queued anyway
		g.held += k - st.granted
		st.granted = k
	}
	st.granted -= k
	st.queued += k
	if st.granted == 0 { // it ran dry: it would read more than it may hold
		st.step = min(2*st.step, g.perStream)
	}
	g.settle(st)
	g.markReady(id, st) // its reader may take more, within its own limit
	return true
}

// Sent accounts for n bytes of stream id's DATA leaving the queue for a
// carrier (or dropped from it); the stream may be gone.
func (g *Grants) Sent(id uint32, n int) {
	g.held -= int64(n)
	if st := g.streams[id]; st != nil {
		st.queued -= int64(n)
		g.settle(st)
		g.markReady(id, st)
		return
	}
	g.excess -= int64(n) // a forgotten stream's DATA counts in full (Forget)
}

// Forget drops stream id; what it was granted and did not use is free for
// the others. Its DATA still queued is accounted for by Sent as it leaves.
func (g *Grants) Forget(id uint32) {
	st := g.streams[id]
	if st == nil {
		return
	}
	g.held -= st.granted
	// Its DATA still queued has no allowance any more: it counts in full
	// until Sent.
	g.excess += st.queued - st.excess
	delete(g.streams, id)
}

// Returned accounts for n bytes of grant stream id's reader gave back
// (its socket went idle).
func (g *Grants) Returned(id uint32, n int64) {
	st := g.streams[id]
	if st == nil || n <= 0 {
		return
	}
	n = min(n, st.granted)
	st.granted -= n
	st.step = max(IdleAllowance, st.step/2) // idle for now: a busy stream that paused ramps up again at once, an idle one shrinks to its allowance
	g.held -= n
	g.settle(st)
}

// Next appends to dst the grants that can be made now and accounts for
// them: first to the streams waiting for the link limit, in turn, then to
// those whose own limit or credit changed.
func (g *Grants) Next(dst []Grant) []Grant {
	if len(g.waiting) > 0 {
		w := g.waiting
		g.waiting = g.spare[:0]
		for i, id := range w {
			st := g.streams[id]
			if st == nil {
				continue
			}
			st.waiting = false
			if !g.try(id, st, &dst, true) { // back in line, first; the rest keep their turn
				for _, id := range w[i+1:] {
					if st := g.streams[id]; st != nil {
						g.waiting = append(g.waiting, id)
					}
				}
				break
			}
		}
		g.spare = w[:0]
	}
	r := g.ready
	g.ready = g.ready[:0]
	for _, id := range r {
		if st := g.streams[id]; st != nil {
			st.ready = false
			g.try(id, st, &dst, len(g.waiting) > 0)
		}
	}
	return dst
}

// try grants stream id what it may have now: once its reader holds half
// its step or less, up to its step (the step adapts: a reader that runs
// dry may hold twice as much, one that went idle half as much), and one
// read's worth at most when the link is contended. It reports false when the link limit held
// it back (it then waits in line).
func (g *Grants) try(id uint32, st *grantState, dst *[]Grant, contended bool) bool {
	if !st.attached || st.waiting {
		return !st.waiting
	}
	if st.granted > st.step/2 {
		return true // enough to read on: no grant for every few bytes read
	}
	owed := st.win.Avail() - st.granted
	want := min(owed, st.step-st.granted, g.perStream-st.granted-st.queued)
	if want <= 0 {
		return true // the peer's credit or its own queue: woken by Credit or Sent
	}
	allow := max(0, IdleAllowance-st.granted-st.queued)
	n := min(want, allow+max(0, g.limit-g.excess))
	if contended {
		n = min(n, max(allow, MaxGrant)) // streams wait for room: take turns at it
	}
	if n <= 0 || allow == 0 && n < min(want, MinGrant) {
		st.waiting = true
		g.waiting = append(g.waiting, id)
		return false
	}
	st.granted += n
	g.held += n
	g.settle(st)
	*dst = append(*dst, Grant{Stream: id, N: n})
	return true
}

// settle brings what st holds beyond its allowance into Grants.excess.
func (g *Grants) settle(st *grantState) {
	e := max(0, st.granted+st.queued-IdleAllowance)
	g.excess += e - st.excess
	st.excess = e
}

func (g *Grants) markReady(id uint32, st *grantState) {
	if !st.ready && !st.waiting {
		st.ready = true
		g.ready = append(g.ready, id)
	}
}
