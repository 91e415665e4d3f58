package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/identity"
)

// readBufferSize is a carrier reader's buffer: many small frames, so one
// read syscall brings several; no larger, since a large payload is read
// past it straight into its frame's buffer (engine.Reader), and what the
// buffer takes of it is copied once more.
const readBufferSize = 32 << 10

// Striping and resumption limits.
const (
	// MaxCarriers bounds the carriers of one link.
	MaxCarriers = 16
	// DefaultResumeWindow is how long a link whose last carrier dropped
	// waits to be resumed.
	DefaultResumeWindow = 30 * time.Second
	// ackEvery is how many sequenced bytes a carrier brings before this
	// side acknowledges them at once; fewer wait for the link's ACK
	// delay (engine.AckDelayFor).
	ackEvery = 256 << 10
	// A join naming an id not (yet) known is looked up joinLookups times,
	// joinLookupEvery apart, before it is refused.
	joinLookups     = 50
	joinLookupEvery = 20 * time.Millisecond
)

// linkActor is one link to one peer: the handshakes, the carriers, the
// stream table and the dispatch of incoming frames, and, on the dialling
// side, dialling (and redialling, with backoff) its carriers. It
// supervises its Carriers, its Scheduler and its Streams.
//
// On a CapSeq link (both peers number their frames) the link is not its
// carriers: the dialler adds carriers up to Config.Carriers, each joining
// the link by its id; frames from all of them are put back in order
// (engine.Reorder) and acknowledged; a carrier that dies is redialled while
// the others carry on; and when the last one dies both sides keep the
// link, its streams and what was not acknowledged for the resume window,
// for the dialler to resume it.
type linkActor struct {
	env    *env
	strand *strand // runs this Link and every actor it spawns for the session

	streamProps *actor.Props // every Stream's, made on first use (propsHanded)
	nextStream  actor.Actor  // the Stream streamProps spawns next
	self        *actor.PID
	dialer      carriers.Dialer // nil for a link we accepted; the address in use of addrs
	addrs       failover        // a dialling link's addresses
	conn        net.Conn        // the carrier being dialled or handshaken
	// ownKey, set on a link accepted by ServeKeyed, is the only key its
	// handshake takes: the node's key and identity are not used.
	ownKey []byte
	peer   string

	backoff   time.Duration
	timer     *time.Timer // the next redial, while one is scheduled
	failures  int         // failed attempts in a row (dials and handshakes)
	permanent int         // of those, the last ones that failed for good (permanentError)
	firstDial time.Time   // when this link first dialled
	cancel    context.CancelFunc
	closing   bool
	waiters   []*actor.PID // Close's requests, answered once down

	// The session: set while the link is up (with or without carriers).
	gen       uint64
	up        bool
	authed    bool
	peerKey   *identity.PublicKey // the peer's static key (identity handshakes)
	name      string              // its name= in the authorized keys, or ""
	goingAway bool
	ending    bool // the session ends when its carriers are gone: no resuming
	role      engine.Role
	params    engine.Params
	sched     *actor.PID
	carriers  map[int]*carrierRef
	nextCID   int
	streams   map[uint32]*actor.PID
	streamOf  map[string]uint32     // a stream's id by its actor's PID id, for Terminated
	unbinding map[string]uint32     // reverse listeners stopped by UNBIND, by PID id: their bind id
	opens     *engine.Opens         // stream ids, the peer's OPENs, and what counts against the limit
	reverse   map[uint32]*actor.PID // listeners for the peer's -R, by its id
	bound     map[uint32]bool       // our -R this session asked the peer for, by id
	// reverseAt is where each listener of reverse listens, and answers the
	// peer's answer to each of our -R this session: what status shows.
	reverseAt map[uint32]string
	answers   map[uint32]RemoteStatus
	// bindRetry asks again for the -R the peer could not listen for (its
	// socket taken: by a link of ours that waits to resume there, say),
	// bindBackoff apart, doubling to maxBindBackoff (link_streams.go).
	bindRetry   *time.Timer
	bindBackoff time.Duration
	budget      *budget
	rttNanos    *atomic.Int64 // the last PING round trip, shared with the streams
	downReason  error         // set by this side when it ends the session
	peerAway    error         // the peer's GOAWAY, if it sent one

	// Sequencing (CapSeq links).
	seq         bool
	linkID      engine.LinkID
	newID       engine.LinkID // the id a dialler offered for a new link
	joinGen     uint64        // the session the carrier being handshaken asked to join (0: none)
	registered  bool          // linkID is in the node's table (accepter)
	reorder     *engine.Reorder
	ackTimer    *time.Timer
	ackArmed    bool
	interactive engine.Interactivity // requests or bulk, on a striped link (ackDelay)
	resuming    bool                 // no carrier: waiting to be resumed
	noJoin      bool                 // the peer refused a join to the live link: add no carriers
	// refusedInRow counts the dials refused in a row while waiting to
	// resume (failover.go, resumeRefused).
	refusedInRow int
	// pendingJoins arrived before this Link's own handshake result.
	pendingJoins []*handshakeDone
	resumeTimer  *time.Timer

	// onEnd, when set, is told how the link ended once it has stopped:
	// endErr, nil for an orderly end (GOAWAY either way).
	onEnd  chan error
	endErr error

	// Liveness.
	rtt        time.Duration
	upSince    time.Time
	keepalive  *time.Timer
	drainTimer *time.Timer
}

// carrierRef is the Link's view of one of its carriers.
type carrierRef struct {
	id      int
	pid     *actor.PID
	local   string
	silence engine.Silence // frames heard between keepalive ticks
	seqIn   uint64         // bytes of sequenced frames received
	ackedIn uint64         // seqIn when it was last acknowledged
}

// props makes the props of an actor of this link's session (its
// Scheduler, Carriers, Streams): run on the link's strand.
func (l *linkActor) props(p actor.Producer) *actor.Props { return l.env.propsOn(l.strand, p) }

// newLink makes the Link of an accepted carrier conn, or, given addrs,
// of a link that dials them (conn nil), in failover order.
func newLink(e *env, conn net.Conn, addrs ...carriers.Dialer) *linkActor {
	l := &linkActor{env: e, conn: conn, backoff: e.cfg.Backoff}
	if len(addrs) > 0 {
		l.addrs = failover{dialers: addrs}
		l.dialer = l.addrs.current()
		l.peer, l.role = l.dialer.String(), engine.RoleDialer
	} else {
		l.peer, l.role = conn.RemoteAddr().String(), engine.RoleAccepter
	}
	return l
}

func (l *linkActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *inFrame:
		f := m.f
		m.f = nil
		if held := l.frameIn(ctx, m.carrier, f, m.backlog); held > 0 {
			m.held = int64(held)
			l.heldUntilScheduled(ctx, m.backlog, m.held, m)
		}
	case *inFrames:
		held := 0
		for i, f := range m.frames {
			m.frames[i] = nil
			held += l.frameIn(ctx, m.carrier, f, m.backlog)
		}
		if held > 0 {
			m.held = int64(held)
			l.heldUntilScheduled(ctx, m.backlog, m.held, m)
		}
	case *ackTick:
		l.ackArmed = false
		for _, c := range l.carriers {
			if c.seqIn > c.ackedIn {
				l.sendAck(ctx, c)
			}
		}
	case *keepaliveTick:
		l.tick(ctx, m.gen)
	case *statusReq:
		ls := &LinkStatus{Peer: l.peer, Name: l.name, Up: l.up, Role: l.role.String(), Authenticated: l.authed, RTT: l.rtt,
			Streams: len(l.streams), Since: l.upSince, Carriers: len(l.carriers), Resuming: l.resuming}
		if !l.up || l.resuming {
			ls.RTT = 0 // the last one measured is no news of a link being dialled or resumed
		}
		l.remoteStatus(ls)
		if l.peerKey != nil {
			ls.PeerKey = l.peerKey.String()
		}
		if l.dialer != nil {
			ls.Addr = l.dialer.String()
			if l.addrs.list() {
				ls.Addrs = l.addrs.names()
			}
		}
		ids := slices.Sorted(maps.Keys(l.carriers))
		for _, id := range ids {
			c := l.carriers[id]
			if l.seq {
				ls.CarrierBytesIn = append(ls.CarrierBytesIn, c.seqIn)
			}
			ls.PerCarrier = append(ls.PerCarrier, CarrierStatus{Local: c.local, BytesIn: c.seqIn})
		}
		if len(ids) == 0 {
			ctx.Respond(ls)
			return
		}
		// The Scheduler, alive while there are carriers, adds what it
		// knows of each and answers the asker.
		ctx.RequestWithCustomSender(l.sched, &carrierStatusReq{ids: ids, ls: ls}, ctx.Sender())
	case *actor.Started:
		l.self = ctx.Self()
		if l.dialer != nil {
			l.dial()
		} else {
			l.handshake(l.conn)
		}
	case *dialDone:
		l.cancel = nil
		if l.closing {
			if m.conn != nil {
				l.closeConn(m.conn)
			}
			l.stopIfDone(ctx)
			return
		}
		if m.at != l.addrs.at {
			// A dial begun before the link moved on to another address
			// (the session it was for was lost meanwhile): its carrier
			// belongs to nothing now.
			if m.conn != nil {
				l.closeConn(m.conn)
			}
			l.next(ctx)
			return
		}
		if m.err != nil {
			l.env.log.Warn("link dial failed", "peer", l.peer, "err", m.err)
			if !l.resumeRefused(ctx, m.err) {
				l.retry(m.err)
			}
			return
		}
		l.handshake(m.conn)
	case *redialTick:
		l.timer = nil
		l.next(ctx)
	case *handshakeDone:
		l.handshakeDone(ctx, m)
	case *carrierJoin:
		l.join(ctx, m.done)
	case *joinRetry:
		if l.closing {
			l.conn = nil
			l.closeConn(m.done.conn)
			l.stopIfDone(ctx)
			return
		}
		l.routeJoin(ctx, m.done, m.attempt)
	case *carrierDown:
		if c := l.carriers[m.id]; c != nil {
			if errors.Is(m.err, engine.ErrIntegrity) || errors.Is(m.err, engine.ErrProtocol) && !errors.Is(m.err, engine.ErrTruncated) {
				// A record that did not open (someone on the way alters
				// the link), or a frame header that breaks the protocol
				// (the carrier's reader said GOAWAY): the link ends, on
				// every carrier, with no resuming (§10, §15.4). A frame
				// cut short by the carrier's end is the carrier lost, as
				// a connection that dies mid-frame is: the link resumes.
				l.protocolError(ctx, m.err)
			}
			l.carrierLost(ctx, c, m.err)
		}
	case *schedFailed:
		if m.overload {
			l.overloaded(ctx, m.err)
			return
		}
		l.protocolError(ctx, m.err)
	case *resumeExpired:
		if m.gen == l.gen && l.up && l.resuming {
			l.downReason = fmt.Errorf("%w (%v)", errResumeExpired, l.env.cfg.ResumeWindow)
			l.env.log.Warn("link not resumed in time; resetting its streams", "peer", l.peer,
				"window", l.env.cfg.ResumeWindow, "streams", len(l.streams))
			l.sessionDown(ctx, l.downReason)
		}
	case *remotesChanged:
		l.syncBinds(ctx)
	case *bindRetryTick:
		l.bindRetry = nil
		if m.gen == l.gen {
			l.syncBinds(ctx)
		}
	case *authorizedChanged:
		l.authorizedKeysChanged(ctx)
	case *openRequest:
		l.open(ctx, m)
	case *streamEnded:
		if l.opens != nil {
			l.opens.Ended(m.id)
		}
	case *actor.Terminated:
		l.childStopped(ctx, m.Who)
	case *shutdown:
		l.shutdown(ctx, m.drain)
	case *drainOver:
		if m.gen == l.gen && l.up {
			l.env.log.Info("drain time over; closing the link", "peer", l.peer, "streams", len(l.streams))
			l.closeSession(ctx)
		}
	case *redialRequest:
		if l.dialer != nil && !l.closing && l.conn == nil && l.cancel == nil && (!l.up || l.resuming) {
			if l.timer != nil {
				l.timer.Stop()
				l.timer = nil
			}
			l.env.log.Info("redialling now", "peer", l.peer)
			l.backoff = l.env.cfg.Backoff
			l.addrs.sessionUp() // a new round: each address at once again
			l.next(ctx)
		}
	case *actor.Stopping:
		l.closing = true
		if l.cancel != nil {
			l.cancel()
		}
		if l.timer != nil {
			l.timer.Stop()
		}
		l.stopTimers()
		if l.conn != nil {
			l.closeConn(l.conn)
		}
		if l.up {
			l.env.links.remove(l.self)
		}
		l.unregister()
		if l.reorder != nil {
			l.reorder.Drop()
		}
	case *actor.Stopped:
		l.strand.closePoller() // its streams have stopped
		if l.onEnd != nil {
			l.onEnd <- l.endErr
		}
		l.env.linkStopped(l.self)
	}
}

// frameIn takes a frame carrier read, counted in backlog (nil: not
// counted). It returns 1 for a frame that leaves the count only once the
// Scheduler has taken what the Link sent it for the frame, 0 for one that
// left it (heldUntilScheduled).
func (l *linkActor) frameIn(ctx actor.Context, carrier int, f *engine.Frame, backlog *backlog) (held int) {
	if backlog != nil {
		if f.Type == engine.TypeData {
			backlog.taken() // the reader may read one more
		} else {
			held = 1
		}
	}
	switch f.Type {
	case engine.TypeData:
		traceHop(hopLinkIn)
	case engine.TypeOpen:
		traceHop(hopOpenIn)
	case engine.TypeOpenOK:
		traceHop(hopOpenOKIn)
	}
	c := l.carriers[carrier]
	if c == nil || !l.up {
		f.Release()
		return
	}
	c.silence.Heard()
	l.receive(ctx, c, f)
	return held
}

// receive takes a frame a carrier read. On a CapSeq link, sequenced frames
// go through the reorder buffer and are acknowledged on the carrier they
// came by; the carrier's own frames (ACK, PING, PONG, GOAWAY) are handled
// at once.
func (l *linkActor) receive(ctx actor.Context, c *carrierRef, f *engine.Frame) {
	if l.seq {
		if f.Seq != 0 {
			if !f.Type.Sequenced() {
				f.Release()
				l.protocolError(ctx, fmt.Errorf("%w: %v with a sequence number", engine.ErrMalformed, f.Type))
				return
			}
			c.seqIn += uint64(f.WireLen())
			if f.Type == engine.TypeData && len(l.carriers) > 1 {
				l.interactive.Frame(f.Stream, f.WireLen(), time.Now()) // see ackDelay
			}
			l.scheduleAck(ctx, c)
			if err := l.reorder.Push(f); err != nil {
				l.protocolError(ctx, err)
				return
			}
			for g := l.reorder.Pop(); g != nil; g = l.reorder.Pop() {
				l.dispatch(ctx, c, g)
			}
			return
		}
		if f.Type.Sequenced() {
			f.Release()
			l.protocolError(ctx, fmt.Errorf("%w: %v without a sequence number on a sequenced link", engine.ErrMalformed, f.Type))
			return
		}
	}
	l.dispatch(ctx, c, f)
}

// heldUntilScheduled lets go of held frames of a carrier's backlog once
// the Scheduler has taken what the Link sent it for them. DATA leaves the
// backlog when the Link takes it (its Stream's window bounds what waits
// for the socket); every other frame is a PONG or OPEN_FAIL to send, or a
// CREDIT or ACK for the Scheduler, and a peer that sends them faster than
// the Scheduler takes them would pile them up in its mailbox, which has
// no bound (3.7 GB in 15 s from a PING flood beside a thousand streams).
// Counted until the Scheduler is done, they hold the carrier's reader
// back, as the Link's own backlog does. The message that brought them
// goes on to the Scheduler with the count, its frames taken (onward, an
// *inFrame or *inFrames): no allocation for it.
func (l *linkActor) heldUntilScheduled(ctx actor.Context, b *backlog, held int64, onward any) {
	if l.sched == nil {
		b.takenN(held)
		return
	}
	ctx.Send(l.sched, onward)
}
