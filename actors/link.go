package actors

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sockmux/carriers"
	"sockmux/engine"
	"sockmux/forward"
)

// readBufferSize is a carrier reader's buffer: a few frames, so one read
// syscall brings several small frames.
const readBufferSize = 256 << 10

// Striping and resumption limits.
const (
	// MaxCarriers bounds the carriers of one link.
	MaxCarriers = 16
	// DefaultResumeWindow is how long a link whose last carrier dropped
	// waits to be resumed.
	DefaultResumeWindow = 30 * time.Second
	// ackEvery is how many sequenced bytes a carrier brings before this
	// side acknowledges them at once; fewer wait for ackDelay.
	ackEvery = 256 << 10
	// ackDelay is the longest an arrival waits for its ACK.
	ackDelay = 5 * time.Millisecond
	// A join naming an id not (yet) known is looked up joinLookups times,
	// joinLookupEvery apart, before it is refused.
	joinLookups     = 50
	joinLookupEvery = 20 * time.Millisecond
)

// ErrResumeExpired is why a link whose carriers all dropped went down: it
// was not resumed within the resume window (or the peer no longer had it).
var ErrResumeExpired = errors.New("link not resumed within the resume window")

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
	self   *actor.PID
	dialer carriers.Dialer // nil for a link we accepted
	conn   net.Conn        // the carrier being dialled or handshaken
	peer   string

	backoff   time.Duration
	timer     *time.Timer // the next redial, while one is scheduled
	failures  int         // failed attempts in a row (dials and handshakes)
	firstDial time.Time   // when this link first dialled
	cancel    context.CancelFunc
	closing   bool
	waiters   []*actor.PID // Close's requests, answered once down

	// The session: set while the link is up (with or without carriers).
	gen        uint64
	up         bool
	authed     bool
	policy     *forward.TargetPolicy
	goingAway  bool
	ending     bool // the session ends when its carriers are gone: no resuming
	role       engine.Role
	params     engine.Params
	sched      *actor.PID
	carriers   map[int]*carrierRef
	nextCID    int
	streams    map[uint32]*actor.PID
	ended      map[uint32]bool       // streams ended on the wire whose actors are still going
	reverse    map[uint32]*actor.PID // listeners for the peer's -R, by its id
	budget     *budget
	rttNanos   *atomic.Int64 // the last PING round trip, shared with the streams
	nextID     uint32
	lastPeerID uint32
	downReason error // set by this side when it ends the session
	peerAway   error // the peer's GOAWAY, if it sent one

	// Sequencing (CapSeq links).
	seq        bool
	linkID     engine.LinkID
	newID      engine.LinkID // the id a dialler offered for a new link
	joinGen    uint64        // the session the carrier being handshaken asked to join (0: none)
	registered bool          // linkID is in the node's table (accepter)
	reorder    *engine.Reorder
	ackTimer   *time.Timer
	ackArmed   bool
	resuming   bool // no carrier: waiting to be resumed
	noJoin     bool // the peer refused a join to the live link: add no carriers
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
	id          int
	pid         *actor.PID
	local       string
	framesIn    uint64 // frames received
	framesSeen  uint64 // framesIn at the last keepalive tick
	silentTicks int
	seqIn       uint64 // bytes of sequenced frames received
	ackedIn     uint64 // seqIn when it was last acknowledged
}

func newLink(e *env, conn net.Conn, d carriers.Dialer) *linkActor {
	l := &linkActor{env: e, conn: conn, dialer: d, backoff: e.cfg.Backoff}
	if d != nil {
		l.peer, l.role = d.String(), engine.RoleDialer
	} else {
		l.peer, l.role = conn.RemoteAddr().String(), engine.RoleAccepter
	}
	return l
}

func (l *linkActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *inFrame:
		if m.taken != nil {
			<-m.taken // the reader may read one more
		}
		c := l.carriers[m.carrier]
		if c == nil || !l.up {
			m.f.Release()
			return
		}
		c.framesIn++
		l.receive(ctx, c, m.f)
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
		ls := &LinkStatus{Peer: l.peer, Up: l.up, Role: l.role.String(), Authenticated: l.authed, RTT: l.rtt,
			Streams: len(l.streams), Since: l.upSince, Carriers: len(l.carriers), Resuming: l.resuming}
		if l.seq {
			ids := slices.Sorted(maps.Keys(l.carriers))
			for _, id := range ids {
				ls.CarrierBytesIn = append(ls.CarrierBytesIn, l.carriers[id].seqIn)
			}
		}
		ctx.Respond(ls)
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
		if m.err != nil {
			l.env.log.Warn("link dial failed", "peer", l.peer, "err", m.err)
			l.retry(m.err)
			return
		}
		l.handshake(m.conn)
	case *redial:
		l.timer = nil
		l.next(ctx)
	case *handshakeDone:
		l.handshakeDone(ctx, m)
	case *joinCarrier:
		l.join(ctx, m.done)
	case *retryJoin:
		if l.closing {
			l.conn = nil
			l.closeConn(m.done.conn)
			l.stopIfDone(ctx)
			return
		}
		l.routeJoin(ctx, m.done, m.attempt)
	case *carrierDown:
		if c := l.carriers[m.id]; c != nil {
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
			l.downReason = fmt.Errorf("%w (%v)", ErrResumeExpired, l.env.cfg.ResumeWindow)
			l.env.log.Warn("link not resumed in time; resetting its streams", "peer", l.peer,
				"window", l.env.cfg.ResumeWindow, "streams", len(l.streams))
			l.sessionDown(ctx, l.downReason)
		}
	case *openStream:
		l.open(ctx, m)
	case *streamEnded:
		if l.streams[m.id] != nil {
			l.ended[m.id] = true
		}
	case *streamDone:
		delete(l.streams, m.id)
		delete(l.ended, m.id)
		if l.closing && l.up && len(l.streams) == 0 {
			l.closeSession(ctx)
		}
	case *shutdown:
		l.shutdown(ctx, m.drain)
	case *drainOver:
		if m.gen == l.gen && l.up {
			l.env.log.Info("drain time over; closing the link", "peer", l.peer, "streams", len(l.streams))
			l.closeSession(ctx)
		}
	case *redialNow:
		if l.dialer != nil && !l.closing && l.conn == nil && l.cancel == nil && (!l.up || l.resuming) {
			if l.timer != nil {
				l.timer.Stop()
				l.timer = nil
			}
			l.env.log.Info("redialling now", "peer", l.peer)
			l.backoff = l.env.cfg.Backoff
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
		if l.onEnd != nil {
			l.onEnd <- l.endErr
		}
		l.env.linkStopped(l.self)
	}
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

// scheduleAck acknowledges at once when a carrier brought ackEvery bytes,
// and otherwise within ackDelay.
func (l *linkActor) scheduleAck(ctx actor.Context, c *carrierRef) {
	if c.seqIn-c.ackedIn >= ackEvery {
		l.sendAck(ctx, c)
		return
	}
	if l.ackArmed {
		return
	}
	l.ackArmed = true
	if l.ackTimer == nil {
		self, env := l.self, l.env
		l.ackTimer = time.AfterFunc(ackDelay, func() { env.send(self, &ackTick{}) })
		return
	}
	l.ackTimer.Reset(ackDelay)
}

func (l *linkActor) sendAck(ctx actor.Context, c *carrierRef) {
	c.ackedIn = c.seqIn
	ctx.Send(l.sched, &pinned{carrier: c.id, f: engine.NewAck(engine.Ack{Received: l.reorder.Received(), CarrierBytes: c.seqIn})})
}

// closeConn closes a carrier off the actor: some take a while (a command
// is given a moment to exit).
func (l *linkActor) closeConn(c net.Conn) { l.env.goroutine(func() { c.Close() }) }

// next is what a dialling link does when it may dial: start a link, or
// add a carrier to the one it has.
func (l *linkActor) next(ctx actor.Context) {
	if l.dialer == nil || l.closing || l.conn != nil || l.cancel != nil || l.timer != nil {
		return
	}
	if !l.up || (!l.ending && !l.noJoin && len(l.carriers) < l.wantCarriers()) {
		l.dial()
	}
}

// wantCarriers is how many carriers a dialling link keeps.
func (l *linkActor) wantCarriers() int {
	if !l.seq {
		return 1
	}
	return min(max(l.env.cfg.Carriers, 1), MaxCarriers)
}

func (l *linkActor) dial() {
	if l.firstDial.IsZero() {
		l.firstDial = time.Now()
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	self, d := l.self, l.dialer
	l.env.goroutine(func() {
		c, err := d.Dial(ctx)
		l.env.send(self, &dialDone{conn: c, err: err})
	})
}

// handshake runs the HELLO (and AUTH) exchange on conn in a goroutine. A
// dialler that has a session asks to join it; an accepter enters a new
// CapSeq link in the node's table before it reports, so a join that races
// the report finds it.
func (l *linkActor) handshake(conn net.Conn) {
	l.conn = conn
	self, cfg, role, env := l.self, l.env.cfg, l.role, l.env
	hs := &handshaker{
		hello: &engine.Hello{
			MinVersion: env.minVersion, MaxVersion: env.maxVersion, Role: role,
			MaxPayload: cfg.MaxPayload, InitialWindow: cfg.Window,
		},
		key: cfg.Key, maxSkew: cfg.MaxSkew, replay: env.replay, now: env.now,
	}
	if !env.noSeq {
		lh := &engine.LinkHello{Reorder: uint32(reorderLimit(cfg.LinkBudget))}
		if l.dialer != nil {
			l.joinGen = 0
			if l.up {
				lh.ID, lh.Join, lh.Received = l.linkID, true, l.reorder.Received()
				l.joinGen = l.gen
			} else {
				_, _ = crand.Read(lh.ID[:])
				l.newID = lh.ID
			}
		}
		hs.link = lh
	}
	l.env.goroutine(func() {
		res := hs.run(conn, cfg.HandshakeTimeout)
		res.conn = conn
		if res.err == nil && role == engine.RoleAccepter && res.params.Capabilities&engine.CapSeq != 0 && !res.link.Join {
			if !env.registerLink(res.link.ID, self) {
				res.err = fmt.Errorf("%w: link id %v is already in use", engine.ErrMalformed, res.link.ID)
				refuseConn(conn, res.params.Version, engine.CodeProtocol, res.err.Error())
			}
		}
		l.env.send(self, res)
	})
}

// reorderLimit is what this side holds out of order on a link, and what
// it keeps unacknowledged: a quarter of the link's memory budget each,
// between 1 and 16 MiB.
func reorderLimit(linkBudget int64) int {
	return int(min(max(linkBudget/4, 1<<20), engine.DefaultReorder))
}

// refuseConn tells the peer on a carrier that has no Carrier actor why it
// is refused, and closes it. It blocks for at most a second.
func refuseConn(conn net.Conn, version uint8, code engine.Code, text string) {
	f := engine.NewReason(engine.TypeGoAway, 0, code, text)
	b := engine.AppendFrame(nil, f, version)
	f.Release()
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write(b)
	conn.Close()
}

func (l *linkActor) handshakeDone(ctx actor.Context, m *handshakeDone) {
	l.conn = nil
	defer l.takePendingJoins(ctx) // up now, or refused
	seq := m.err == nil && m.params.Capabilities&engine.CapSeq != 0
	if l.closing {
		if seq && l.dialer == nil && !m.link.Join {
			l.env.unregisterLink(m.link.ID, l.self)
		}
		l.closeConn(m.conn)
		l.stopIfDone(ctx)
		return
	}
	if l.joinGen != 0 && (!l.up || l.gen != l.joinGen) {
		// A join for a session that has ended since: the carrier
		// belongs to nothing here.
		l.joinGen = 0
		l.closeConn(m.conn)
		l.next(ctx)
		return
	}
	l.joinGen = 0
	if m.err != nil {
		l.closeConn(m.conn)
		l.endErr = fmt.Errorf("link handshake failed: %w", m.err)
		l.env.warn("link handshake failed", "peer", l.peer, "err", m.err)
		if l.up {
			if errors.Is(m.err, engine.ErrUnknownLink) {
				if len(l.carriers) == 0 {
					// The peer no longer has the link: resuming is over.
					l.downReason = fmt.Errorf("%w: the peer no longer has it", ErrResumeExpired)
					l.sessionDown(ctx, l.downReason)
					return
				}
				// The link is alive but the peer cannot find it for a
				// join (a "sockmux stdio" serves one carrier): keep
				// the carriers there are.
				l.noJoin = true
				l.env.log.Warn("the peer cannot add carriers to this link; going on with those it has",
					"peer", l.peer, "carriers", len(l.carriers))
				return
			}
			l.scheduleRedial()
			return
		}
		if l.dialer != nil && !l.closing {
			l.retry(m.err)
			return
		}
		l.afterDown(ctx)
		return
	}
	switch {
	case l.dialer == nil && seq && m.link.Join:
		l.routeJoin(ctx, m, 0)
	case l.up:
		if !seq {
			l.closeConn(m.conn)
			l.env.warn("extra carrier refused: the peer does not sequence frames", "peer", l.peer)
			return
		}
		l.backoff = l.env.cfg.Backoff
		l.attach(ctx, m)
		l.next(ctx)
	default:
		l.sessionUp(ctx, m)
		l.next(ctx)
	}
}

// takePendingJoins handles the joins that arrived while this Link's own
// handshake was being reported.
func (l *linkActor) takePendingJoins(ctx actor.Context) {
	pending := l.pendingJoins
	l.pendingJoins = nil
	for _, j := range pending {
		l.join(ctx, j)
	}
}

// routeJoin hands a carrier that asked to join a link to that link, and
// ends this (accepting) Link, which never had a session of its own.
//
// The link's own first handshake may still be finishing on the accepting
// side when a fast dialler's join arrives (with no key, the dialler is done
// as soon as it has read our HELLO), so an id not found yet is looked up
// again for a moment before the join is refused.
func (l *linkActor) routeJoin(ctx actor.Context, m *handshakeDone, attempt int) {
	pid := l.env.seqLink(m.link.ID)
	if pid == nil && attempt < joinLookups {
		if attempt == 0 {
			l.env.log.Debug("join for a link not known yet; looking again", "peer", l.peer, "link", m.link.ID)
		}
		l.conn = m.conn // closed if this Link stops meanwhile
		self := l.self
		time.AfterFunc(joinLookupEvery, func() { l.env.send(self, &retryJoin{done: m, attempt: attempt + 1}) })
		return
	}
	l.conn = nil
	if pid != nil {
		ctx.Send(pid, &joinCarrier{done: m})
	} else {
		l.env.warn("join refused: no such link", "peer", l.peer, "link", m.link.ID)
		l.env.stats.Refusals.Add(1)
		conn, v := m.conn, m.params.Version
		l.env.goroutine(func() {
			refuseConn(conn, v, engine.CodeUnknownLink,
				fmt.Sprintf("no link %v here: it never existed, or it was not resumed within the resume window", m.link.ID))
		})
	}
	l.closing = true
	l.stopIfDone(ctx)
}

// join takes a carrier the peer asked to add to this link.
func (l *linkActor) join(ctx actor.Context, m *handshakeDone) {
	refuse := func(code engine.Code, reason string) {
		l.env.warn("join refused", cause(reason), "peer", m.conn.RemoteAddr().String(), "link", l.linkID, "reason", reason)
		l.env.stats.Refusals.Add(1)
		conn, v := m.conn, m.params.Version
		l.env.goroutine(func() { refuseConn(conn, v, code, reason) })
	}
	if !l.up && !l.closing && l.conn != nil {
		// Registered by our handshake goroutine, which has not reported
		// yet: take the join once the session is up.
		l.pendingJoins = append(l.pendingJoins, m)
		return
	}
	switch {
	case !l.up || !l.seq || l.ending || l.closing:
		refuse(engine.CodeUnknownLink, "the link is closing")
	case l.authed && !m.authed:
		refuse(engine.CodeAuth, "the link is authenticated and the joining carrier is not")
	case m.params.Version != l.params.Version:
		refuse(engine.CodeProtocol, fmt.Sprintf("carrier speaks version %d, the link %d", m.params.Version, l.params.Version))
	case len(l.carriers) >= MaxCarriers:
		refuse(engine.CodeRefused, fmt.Sprintf("the link has %d carriers, the most it takes", MaxCarriers))
	default:
		l.peer = m.conn.RemoteAddr().String()
		l.attach(ctx, m)
	}
}

// attach adds a handshaken carrier to the session. A joining carrier
// carries what its sender had received: the Scheduler takes it as an ACK,
// so nothing the peer has is sent again. The accepter answers a join with
// an ACK of its own, the carrier's first frame.
func (l *linkActor) attach(ctx actor.Context, m *handshakeDone) {
	id := l.nextCID
	l.nextCID++
	q := newFrameQueue()
	var first *engine.Frame
	if l.seq && m.link.Join {
		if l.dialer == nil {
			ctx.Send(l.sched, &ackIn{carrier: id, ack: engine.Ack{Received: m.link.Received}})
			first = engine.NewAck(engine.Ack{Received: l.reorder.Received()})
		} else {
			ctx.Send(l.sched, &ackIn{carrier: id, ack: m.joinAck})
		}
	}
	ctx.Send(l.sched, &carrierAttached{id: id, q: q, first: first})
	conn, r, v, sched := m.conn, m.reader, m.params.Version, l.sched
	c := &carrierRef{id: id, local: conn.LocalAddr().String()}
	c.pid = ctx.Spawn(l.env.props(func() actor.Actor { return newCarrier(l.env, id, conn, r, v, l.self, sched, q) }))
	l.carriers[id] = c
	// A PING at once: streams size their windows by the round trip, and
	// the Scheduler weighs carriers by theirs.
	ctx.Send(l.sched, &pinned{carrier: id, f: engine.NewPing(engine.TypePing, uint64(time.Now().UnixNano()))})
	if l.resuming {
		l.resuming = false
		if l.resumeTimer != nil {
			l.resumeTimer.Stop()
			l.resumeTimer = nil
		}
		if !l.goingAway && !l.closing {
			l.env.links.add(l.self) // new streams may come again
		}
		l.env.stats.Resumes.Add(1)
		l.env.log.Info("link resumed", "peer", l.peer, "link", l.linkID, "streams", len(l.streams))
	} else if len(l.carriers) > 1 {
		l.env.log.Info("carrier joined the link", "peer", l.peer, "link", l.linkID, "carriers", len(l.carriers))
	}
}

// carrierLost takes a carrier out of the session. The link goes on while
// it has others; with none left it waits to be resumed, or ends.
func (l *linkActor) carrierLost(ctx actor.Context, c *carrierRef, err error) {
	delete(l.carriers, c.id)
	ctx.Stop(c.pid)
	ctx.Send(l.sched, &carrierGone{id: c.id})
	if len(l.carriers) > 0 {
		if !l.ending {
			l.env.log.Warn("carrier lost; the link goes on over the others", "peer", l.peer, "err", err,
				"carriers", len(l.carriers))
			l.next(ctx)
		}
		return
	}
	if l.seq && l.env.cfg.ResumeWindow > 0 && !l.ending && !l.closing && l.downReason == nil && l.peerAway == nil {
		l.resuming = true
		// New streams go to a live link meanwhile, or wait for one (this
		// one resumed, or another) up to the open timeout.
		l.env.links.remove(l.self)
		self, gen := l.self, l.gen
		l.resumeTimer = time.AfterFunc(l.env.cfg.ResumeWindow, func() { l.env.send(self, &resumeExpired{gen: gen}) })
		l.env.log.Warn("link lost its last carrier; waiting to resume it", "peer", l.peer, "err", err,
			"window", l.env.cfg.ResumeWindow, "streams", len(l.streams))
		l.backoff = l.env.cfg.Backoff
		l.next(ctx)
		return
	}
	l.sessionDown(ctx, err)
}

// shutdown says GOAWAY (the peer opens no more streams), lets the open
// streams finish for up to drain, then closes the carriers.
func (l *linkActor) shutdown(ctx actor.Context, drain time.Duration) {
	if s := ctx.Sender(); s != nil {
		l.waiters = append(l.waiters, s)
	}
	if l.closing && l.up {
		return // already draining
	}
	l.closing = true
	if l.cancel != nil {
		l.cancel()
	}
	if !l.up {
		if l.conn != nil {
			// A handshake in progress ends now, not at its timeout:
			// its result then stops the link.
			l.closeConn(l.conn)
		}
		l.stopIfDone(ctx)
		return
	}
	l.downReason = errShuttingDown
	goAway := func() *engine.Frame {
		return engine.NewReason(engine.TypeGoAway, 0, engine.CodeShutdown, "shutting down")
	}
	if len(l.streams) == 0 || drain <= 0 || l.resuming {
		// The GOAWAY is each carrier's last frame: sent through the
		// Scheduler it could reach a carrier already closing.
		l.closeSession(ctx, goAway)
		return
	}
	ctx.Send(l.sched, goAway())
	l.env.log.Info("draining the link", "peer", l.peer, "streams", len(l.streams), "drain", drain)
	self, gen := l.self, l.gen
	l.drainTimer = time.AfterFunc(drain, func() { l.env.send(self, &drainOver{gen: gen}) })
}

// GoAwayError is why a link went down when the peer ended it with GOAWAY:
// the peer's reason.
type GoAwayError struct{ Reason engine.Reason }

func (e *GoAwayError) Error() string { return "peer going away: " + e.Reason.String() }

// errShuttingDown is the reason of a link this side shut down.
var errShuttingDown = errors.New("shutting down")

// closeSession flushes what the Scheduler handed the carriers and closes
// them, each sending last (a GOAWAY of its own) first when last is set;
// the session ends when they are down.
func (l *linkActor) closeSession(ctx actor.Context, last ...func() *engine.Frame) {
	l.ending = true
	if len(l.carriers) == 0 {
		l.sessionDown(ctx, l.downReason)
		return
	}
	for _, c := range l.carriers {
		m := &closeCarrier{}
		if len(last) > 0 {
			m.last = last[0]()
		}
		ctx.Send(c.pid, m)
	}
}

func (l *linkActor) stopTimers() {
	for _, t := range []**time.Timer{&l.keepalive, &l.drainTimer, &l.resumeTimer, &l.ackTimer} {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
	l.ackArmed = false
}

// armKeepalive schedules the next keepalive tick.
func (l *linkActor) armKeepalive() {
	if l.env.cfg.Keepalive <= 0 {
		return
	}
	self, gen := l.self, l.gen
	l.keepalive = time.AfterFunc(l.env.cfg.Keepalive, func() { l.env.send(self, &keepaliveTick{gen: gen}) })
}

// tick PINGs the peer on every carrier and drops a carrier on which no
// frame at all came for three intervals. Any frame counts, so a busy
// carrier whose PONG is late is never taken for dead (and PONGs are sent
// before data). On a link that can be resumed, a silent carrier is only
// that carrier lost; otherwise the link is dropped, with a GOAWAY saying
// why.
func (l *linkActor) tick(ctx actor.Context, gen uint64) {
	if gen != l.gen || !l.up {
		return
	}
	now := uint64(time.Now().UnixNano())
	for _, c := range l.carriers {
		if c.framesIn == c.framesSeen {
			c.silentTicks++
		} else {
			c.silentTicks, c.framesSeen = 0, c.framesIn
		}
		if c.silentTicks < 3 {
			ctx.Send(l.sched, &pinned{carrier: c.id, f: engine.NewPing(engine.TypePing, now)})
			continue
		}
		err := fmt.Errorf("%w for %v", ErrPeerSilent, 3*l.env.cfg.Keepalive)
		if l.seq && !l.ending {
			l.env.log.Warn("carrier silent; dropping it", "peer", l.peer, "carrier", c.local, "keepalive", l.env.cfg.Keepalive)
			l.carrierLost(ctx, c, err) // stopping its Carrier closes it
			continue
		}
		if l.downReason == nil {
			l.downReason = err
			l.env.log.Warn("peer silent; dropping the link", "peer", l.peer, "keepalive", l.env.cfg.Keepalive)
			l.closeSession(ctx, func() *engine.Frame {
				return engine.NewReason(engine.TypeGoAway, 0, engine.CodeTimeout, "peer silent")
			})
		}
	}
	if l.up {
		l.armKeepalive()
	}
}

func (l *linkActor) sessionUp(ctx actor.Context, m *handshakeDone) {
	if l.gen > 0 {
		l.env.stats.Reconnects.Add(1)
	}
	l.gen++
	l.upSince = time.Now()
	l.up, l.goingAway, l.ending, l.resuming, l.noJoin, l.downReason, l.peerAway = true, false, false, false, false, nil, nil
	l.params = m.params
	l.authed = m.authed
	l.policy = l.env.cfg.AllowTargets
	if l.policy == nil {
		l.policy = forward.LoopbackTargets
		if m.authed {
			l.policy = forward.AnyTarget
		}
	}
	l.streams = make(map[uint32]*actor.PID)
	l.ended = make(map[uint32]bool)
	l.carriers = make(map[int]*carrierRef)
	l.budget = &budget{}
	l.budget.left.Store(l.env.cfg.LinkBudget)
	l.rttNanos = new(atomic.Int64)
	l.nextID, l.lastPeerID = l.role.FirstStreamID(), 0
	l.backoff = l.env.cfg.Backoff
	l.failures = 0
	p := m.params
	l.seq = p.Capabilities&engine.CapSeq != 0
	maxUnacked := 0
	if l.seq {
		// The reorder buffer and the resend buffer come out of the link's
		// memory budget.
		limit := reorderLimit(l.env.cfg.LinkBudget)
		maxUnacked = min(int(m.link.Reorder), limit)
		l.budget.left.Add(-int64(limit + maxUnacked))
		l.reorder = engine.NewReorder(limit)
		l.linkID = m.link.ID
		if l.dialer != nil {
			l.linkID = l.newID // the accepter's HELLO names no link
		}
		l.registered = l.dialer == nil
	}
	l.sched = ctx.Spawn(l.env.props(func() actor.Actor { return newScheduler(l.env, p, maxUnacked) }))
	l.attach(ctx, m)
	l.env.links.add(l.self)
	l.env.stats.LinksUp.Add(1)
	l.armKeepalive()
	l.reverse = make(map[uint32]*actor.PID)
	for i, r := range l.env.cfg.Remotes {
		b := engine.Bind{ID: uint32(i + 1), Addr: r.Bind}
		if r.UDP {
			b.Proto = 1
		}
		ctx.Send(l.sched, engine.NewBind(b))
	}
	l.env.log.Info("link up", "peer", l.peer, "local", m.conn.LocalAddr().String(), "role", l.role.String(),
		"version", p.Version, "authenticated", m.authed, "sequenced", l.seq)
	if f := l.env.cfg.OnLink; f != nil {
		f(LinkEvent{Peer: l.peer, Up: true})
	}
}

// unregister takes the link out of the node's table of CapSeq links.
func (l *linkActor) unregister() {
	if l.registered {
		l.env.unregisterLink(l.linkID, l.self)
		l.registered = false
	}
}

func (l *linkActor) sessionDown(ctx actor.Context, err error) {
	switch {
	case l.downReason != nil:
		err = l.downReason
	case l.peerAway != nil:
		err = l.peerAway
	}
	l.up, l.resuming = false, false
	l.stopTimers()
	l.unregister()
	l.env.links.remove(l.self)
	l.env.stats.LinksUp.Add(-1)
	for _, pid := range l.streams {
		ctx.Stop(pid)
	}
	l.streams, l.ended = nil, nil
	for _, pid := range l.reverse { // the peer's -R ports are released at once
		ctx.Stop(pid)
	}
	l.reverse = nil
	for _, c := range l.carriers {
		ctx.Stop(c.pid)
	}
	l.carriers = nil
	ctx.Stop(l.sched)
	if l.reorder != nil {
		l.reorder.Drop()
		l.reorder = nil
	}
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("carrier closed by peer: %w", err)
	}
	l.endErr = err
	var away *GoAwayError
	if errors.As(err, &away) || errors.Is(err, errShuttingDown) {
		l.endErr = nil // an orderly end, either side's
	}
	l.env.log.Info("link down", "peer", l.peer, "reason", err)
	if f := l.env.cfg.OnLink; f != nil {
		f(LinkEvent{Peer: l.peer, Up: false, Err: err})
	}
	l.afterDown(ctx)
}

// afterDown redials or stops, once a session or an attempt at one ended.
func (l *linkActor) afterDown(ctx actor.Context) {
	if l.dialer != nil && !l.closing {
		l.scheduleRedial()
		return
	}
	l.closing = true
	l.stopIfDone(ctx)
}

// stopIfDone answers Close and stops the link once nothing is in flight.
func (l *linkActor) stopIfDone(ctx actor.Context) {
	if l.up || l.conn != nil || l.cancel != nil {
		return
	}
	for _, w := range l.waiters {
		ctx.Send(w, &shutdown{})
	}
	l.waiters = nil
	ctx.Stop(l.self)
}

// protocolError ends the session: the peer is told why in a GOAWAY on
// every carrier, and the reason is what the link-down log line says.
func (l *linkActor) protocolError(ctx actor.Context, err error) {
	if l.downReason != nil && errors.Is(l.downReason, engine.ErrProtocol) {
		return
	}
	l.downReason = err
	l.env.log.Warn("link protocol error", "peer", l.peer, "err", err)
	l.closeSession(ctx, func() *engine.Frame {
		return engine.NewReason(engine.TypeGoAway, 0, engine.CodeProtocol, err.Error())
	})
}

// overloaded ends the session of a peer that does not read what this side
// sends: GOAWAY with CodeOverload, and no resuming.
func (l *linkActor) overloaded(ctx actor.Context, err error) {
	if l.downReason != nil {
		return
	}
	l.downReason = err
	l.env.log.Warn("link overloaded; closing it", "peer", l.peer, "err", err)
	l.closeSession(ctx, func() *engine.Frame {
		return engine.NewReason(engine.TypeGoAway, 0, engine.CodeOverload, err.Error())
	})
}

func (l *linkActor) dispatch(ctx actor.Context, c *carrierRef, f *engine.Frame) {
	if l.downReason != nil && (errors.Is(l.downReason, engine.ErrProtocol) || errors.Is(l.downReason, ErrPeerNotReading)) {
		// Closing after a protocol error, or on a peer that does not
		// read: nothing more it sends is acted on (or answered).
		f.Release()
		return
	}
	switch f.Type {
	case engine.TypeOpen:
		l.accept(ctx, f)
	case engine.TypeOpenOK, engine.TypeOpenFail, engine.TypeData, engine.TypeFin, engine.TypeRst:
		if f.Stream == 0 {
			f.Release()
			l.protocolError(ctx, fmt.Errorf("%w: %v on stream 0", engine.ErrBadStreamID, f.Type))
			return
		}
		if f.Type == engine.TypeRst || f.Type == engine.TypeOpenFail {
			if _, err := engine.ParseReason(f.Bytes()); err != nil {
				f.Release()
				l.protocolError(ctx, err)
				return
			}
		}
		if pid := l.streams[f.Stream]; pid != nil {
			ctx.Send(pid, f)
			return
		}
		l.env.stats.DroppedFrames.Add(1)
		f.Release()
	case engine.TypeCredit:
		n, err := engine.ParseCredit(f.Bytes())
		f.Release()
		if err != nil {
			l.protocolError(ctx, err)
			return
		}
		ctx.Send(l.sched, &creditIn{id: f.Stream, n: n})
	case engine.TypePing:
		v, err := engine.ParsePing(f.Bytes())
		f.Release()
		if err != nil {
			l.protocolError(ctx, err)
			return
		}
		ctx.Send(l.sched, &pinned{carrier: c.id, f: engine.NewPing(engine.TypePong, v)})
	case engine.TypePong:
		if v, err := engine.ParsePing(f.Bytes()); err == nil {
			l.rtt = time.Since(time.Unix(0, int64(v)))
			l.rttNanos.Store(int64(l.rtt))
			ctx.Send(l.sched, &pathRTT{carrier: c.id, rtt: l.rtt})
			l.env.log.Debug("pong", "peer", l.peer, "rtt", l.rtt)
		}
		f.Release()
	case engine.TypeAck:
		a, err := engine.ParseAck(f.Bytes())
		f.Release()
		if err == nil && !l.seq {
			err = fmt.Errorf("%w: ACK on a link without CapSeq", engine.ErrStreamState)
		}
		if err != nil {
			l.protocolError(ctx, err)
			return
		}
		ctx.Send(l.sched, &ackIn{carrier: c.id, ack: a})
	case engine.TypeBind:
		b, err := engine.ParseBind(f.Bytes())
		f.Release()
		if err != nil {
			l.protocolError(ctx, err)
			return
		}
		l.bind(ctx, b)
	case engine.TypeBindOK:
		r, err := engine.ParseBindReply(f.Bytes())
		f.Release()
		if err != nil {
			l.protocolError(ctx, err)
			return
		}
		l.bindReply(r)
	case engine.TypeGoAway:
		r, err := engine.ParseReason(f.Bytes())
		f.Release()
		if err != nil {
			l.protocolError(ctx, err)
			return
		}
		l.goingAway = true
		l.env.links.remove(l.self)
		l.peerAway = &GoAwayError{Reason: r}
		l.env.log.Info("peer going away", "peer", l.peer, "reason", r.String())
	default: // AUTH, which belongs to the handshake
		f.Release()
		l.protocolError(ctx, fmt.Errorf("%w: %v after the handshake", engine.ErrStreamState, f.Type))
	}
}

// bind listens for the peer's -R, where --allow-listen allows it.
func (l *linkActor) bind(ctx actor.Context, b engine.Bind) {
	reply := func(code engine.Code, text string) {
		ctx.Send(l.sched, engine.NewBindReply(engine.BindReply{ID: b.ID, Code: code, Text: text}))
	}
	if _, dup := l.reverse[b.ID]; dup || b.ID == 0 || b.Proto > 1 {
		reply(engine.CodeRefused, fmt.Sprintf("bad forward id %d or protocol %d", b.ID, b.Proto))
		return
	}
	if len(l.reverse) >= l.env.cfg.MaxBinds {
		reason := fmt.Sprintf("limit of %d reverse forwards per link reached (--max-binds)", l.env.cfg.MaxBinds)
		l.env.warn("reverse forward refused", cause("max-binds"), "peer", l.peer, "listen", b.Addr, "reason", reason)
		l.env.stats.Refusals.Add(1)
		reply(engine.CodeRefused, reason)
		return
	}
	if !l.env.cfg.AllowListen.Allows(b.Addr) {
		// The reason goes to the peer, whose log shows it: from there the
		// policy is the peer's.
		l.env.warn("reverse forward refused", cause("allow-listen"), "peer", l.peer, "listen", b.Addr,
			"reason", "not allowed by this side's --allow-listen policy")
		l.env.stats.Refusals.Add(1)
		reply(engine.CodeRefused, fmt.Sprintf("listening on %s is not allowed by the peer's --allow-listen policy", b.Addr))
		return
	}
	self := l.self
	if b.Proto == 1 {
		pc, err := listenUDP(b.Addr) // bind: no waiting
		if err != nil {
			l.env.warn("reverse forward refused", "peer", l.peer, "listen", b.Addr+"/udp", "reason", err)
			reply(engine.CodeBindFailed, err.Error())
			return
		}
		l.reverse[b.ID] = ctx.Spawn(l.env.props(func() actor.Actor { return newReverseUDPListener(l.env, pc, self, b.ID) }))
		l.env.log.Info("reverse forward listening for the peer", "peer", l.peer, "listen", pc.LocalAddr().String()+"/udp", "id", b.ID)
		reply(engine.CodeNormal, pc.LocalAddr().String())
		return
	}
	ln, err := net.Listen("tcp", b.Addr) // bind and listen: no waiting
	if err != nil {
		l.env.warn("reverse forward refused", "peer", l.peer, "listen", b.Addr, "reason", err)
		reply(engine.CodeBindFailed, err.Error())
		return
	}
	l.reverse[b.ID] = ctx.Spawn(l.env.props(func() actor.Actor { return newReverseListener(l.env, ln, self, b.ID) }))
	l.env.log.Info("reverse forward listening for the peer", "peer", l.peer, "listen", ln.Addr().String(), "id", b.ID)
	reply(engine.CodeNormal, ln.Addr().String())
}

// bindReply is the peer's answer to one of our -R.
func (l *linkActor) bindReply(r engine.BindReply) {
	if r.ID == 0 || int(r.ID) > len(l.env.cfg.Remotes) {
		l.env.warn("BIND_REPLY for an unknown forward", "peer", l.peer, "id", r.ID)
		return
	}
	fwd := l.env.cfg.Remotes[r.ID-1]
	if r.Code == engine.CodeNormal {
		l.env.log.Info("reverse forward listening", "peer", l.peer, "remote", r.Text, "target", fwd.Target)
		return
	}
	err := fmt.Errorf("%w: -R %s: %v", ErrForwardRefused, fwd.Bind, engine.Reason{Code: r.Code, Text: r.Text})
	l.env.log.Warn("reverse forward refused by the peer", "peer", l.peer, "listen", fwd.Bind, "reason", err)
	if l.env.cfg.ExitOnForwardFailure {
		l.env.fail(err)
	}
}

// ErrForwardRefused is a -R the peer would not listen for.
var ErrForwardRefused = errors.New("reverse forward refused")

// accept handles an OPEN from the peer.
func (l *linkActor) accept(ctx actor.Context, f *engine.Frame) {
	id := f.Stream
	peerRole := engine.RoleDialer
	if l.role == engine.RoleDialer {
		peerRole = engine.RoleAccepter
	}
	if !peerRole.Owns(id) || id <= l.lastPeerID {
		f.Release()
		l.protocolError(ctx, fmt.Errorf("%w: OPEN of stream %d (peer is %v, last id %d)", engine.ErrBadStreamID, id, peerRole, l.lastPeerID))
		return
	}
	l.lastPeerID = id
	o, err := engine.ParseOpen(f.Bytes())
	if err != nil {
		f.Release()
		l.protocolError(ctx, err)
		return
	}
	target, datagram := o.Target, false
	switch o.Kind {
	case engine.TargetDial, engine.TargetUDP:
		datagram = o.Kind == engine.TargetUDP
		if !l.policy.Allows(target) {
			f.Release()
			l.env.warn("stream refused", cause("allow-target"), "peer", l.peer, "stream", id, "target", target,
				"reason", "not allowed by this side's --allow-target policy")
			l.env.stats.Refusals.Add(1)
			ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeRefused,
				fmt.Sprintf("target %s is not allowed by the peer's --allow-target policy", target)))
			return
		}
	case engine.TargetForward: // a connection to one of our -R: its target is ours to choose
		n, err := strconv.ParseUint(target, 10, 32)
		if err != nil || n == 0 || n > uint64(len(l.env.cfg.Remotes)) {
			f.Release()
			l.env.warn("stream refused", cause("unknown forward"), "peer", l.peer, "stream", id, "reason", "no such reverse forward", "id", target)
			ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeUnknownTarget, "no reverse forward "+target))
			return
		}
		target, datagram = l.env.cfg.Remotes[n-1].Target, l.env.cfg.Remotes[n-1].UDP
	default:
		f.Release()
		l.env.warn("stream refused", cause("target kind"), "peer", l.peer, "stream", id, "reason", "unknown target kind")
		ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeUnknownTarget, fmt.Sprintf("target kind %d", o.Kind)))
		return
	}
	if l.closing {
		f.Release()
		ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeShutdown, "shutting down"))
		return
	}
	if l.openStreams() >= l.env.cfg.MaxStreams {
		f.Release()
		reason := fmt.Sprintf("limit of %d streams per link reached", l.env.cfg.MaxStreams)
		l.env.warn("stream refused", cause("max-streams"), "peer", l.peer, "stream", id, "target", target, "reason", reason)
		l.env.stats.Refusals.Add(1)
		ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeTooManyStream, reason))
		return
	}
	if len(o.Data) > int(l.params.RecvWindow) {
		f.Release()
		ctx.Send(l.sched, engine.NewReason(engine.TypeRst, id, engine.CodeFlowControl, "first bytes exceed the window"))
		return
	}
	ctx.Send(l.sched, &declare{id: id})
	st := &streamActor{env: l.env, id: id, link: l.self, sched: l.sched, target: target, openFrame: f, datagram: datagram,
		proxyHere: o.Kind == engine.TargetForward && target == forward.TargetSOCKS, policy: l.policy,
		state: engine.NewAccepter(id), recv: engine.NewRecvWindow(l.params.RecvWindow, l.env.cfg.MaxWindow), params: l.params, budget: l.budget, rtt: l.rttNanos}
	l.streams[id] = ctx.Spawn(l.env.props(func() actor.Actor { return st }))
	l.env.stats.StreamsOpened.Add(1)
}

// openStreams is how many streams count against the stream limit: those
// not yet ended on the wire.
func (l *linkActor) openStreams() int { return len(l.streams) - len(l.ended) }

// open starts a stream for a connection a forward accepted.
func (l *linkActor) open(ctx actor.Context, m *openStream) {
	if !l.up || l.goingAway || l.closing {
		l.env.warn("no link for connection; closing it", "forward", m.forward, "client", m.conn.RemoteAddr().String())
		tellOpened(m.opened, ErrNoLink)
		m.conn.Close()
		return
	}
	if l.openStreams() >= l.env.cfg.MaxStreams {
		l.env.warn("stream limit reached; closing connection", "forward", m.forward,
			"client", m.conn.RemoteAddr().String(), "limit", l.env.cfg.MaxStreams)
		tellOpened(m.opened, fmt.Errorf("stream limit of %d reached", l.env.cfg.MaxStreams))
		m.conn.Close()
		return
	}
	if l.nextID > math.MaxUint32-2 {
		l.env.log.Warn("stream ids exhausted on this link; closing connection", "forward", m.forward)
		m.conn.Close()
		return
	}
	id := l.nextID
	l.nextID += 2
	// OPEN leaves here, at allocation, so OPENs go out in id order. What the
	// client already sent rides in it: a non-blocking read, not a wait.
	maxEarly := min(int(l.params.SendWindow), int(l.params.SendMax)-3-len(m.target))
	var first *engine.Buffer
	var err error
	if m.first != nil { // a proxy client's bytes after its request
		if len(m.first) > maxEarly {
			l.env.warn("proxy client sent more before its reply than the peer's window takes; closing it",
				"forward", m.forward, "bytes", len(m.first), "window", maxEarly)
			m.conn.Close()
			return
		}
		if len(m.first) > 0 {
			first = engine.GetBuffer(len(m.first))
			copy(first.B, m.first)
		}
	} else if first, err = newSockReader(m.conn).peek(maxEarly); err != nil && !errors.Is(err, io.EOF) {
		l.env.log.Debug("client gone before its stream opened", "forward", m.forward, "err", err)
		m.conn.Close()
		return
	}
	var data []byte
	if first != nil {
		data = first.B
	}
	state := engine.NewOpener(id)
	_ = state.Send(engine.TypeOpen)
	ctx.Send(l.sched, engine.NewOpen(id, m.kind, m.target, data))
	ctx.Send(l.sched, &declare{id: id})
	l.env.stats.BytesOut.Add(int64(len(data)))
	if first != nil {
		engine.PutBuffer(first)
	}
	st := &streamActor{env: l.env, id: id, link: l.self, sched: l.sched, target: m.target, netConn: m.conn, datagram: m.datagram,
		state: state, recv: engine.NewRecvWindow(l.params.RecvWindow, l.env.cfg.MaxWindow), params: l.params, budget: l.budget, rtt: l.rttNanos, firstLen: len(data), clientEOF: errors.Is(err, io.EOF),
		reply: m.reply, opened: m.opened}
	l.streams[id] = ctx.Spawn(l.env.props(func() actor.Actor { return st }))
	l.env.stats.StreamsOpened.Add(1)
}

func listenUDP(addr string) (*net.UDPConn, error) {
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.ListenUDP("udp", a)
}
