package actors

// A Link's session: up and down, liveness, shutdown and drain, and the
// ends a peer brings on itself (protocol errors, overload).

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

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

// goAwayError is why a link went down when the peer ended it with GOAWAY:
// the peer's reason.
type goAwayError struct{ Reason engine.Reason }

func (e *goAwayError) Error() string { return "peer going away: " + e.Reason.String() }

// Unwrap is the error the reason's code stands for (engine.ErrShutdown,
// engine.ErrOverload, ...), for errors.Is.
func (e *goAwayError) Unwrap() error { return e.Reason.Code.Err() }

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
		m := &carrierClose{}
		if len(last) > 0 {
			m.last = last[0]()
		}
		ctx.Send(c.pid, m)
	}
}

func (l *linkActor) stopTimers() {
	for _, t := range []**time.Timer{&l.keepalive, &l.drainTimer, &l.resumeTimer, &l.ackTimer, &l.bindRetry} {
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
		if !c.silence.Tick() {
			ctx.Send(l.sched, &pinned{carrier: c.id, f: engine.NewPing(engine.TypePing, now)})
			continue
		}
		err := fmt.Errorf("%w for %v", errPeerSilent, engine.SilentTicks*l.env.cfg.Keepalive)
		if engine.OnSilent(l.seq, l.ending) == engine.DropCarrier {
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
		l.env.stats.reconnects.Add(1)
	}
	l.gen++
	l.upSince = time.Now()
	l.up, l.goingAway, l.ending, l.resuming, l.noJoin, l.downReason, l.peerAway = true, false, false, false, false, nil, nil
	l.params = m.params
	l.authed = m.authed
	l.identityUp(m)
	l.streams = make(map[uint32]*actor.PID)
	l.streamOf = make(map[string]uint32)
	l.opens = engine.NewOpens(l.role, l.env.cfg.MaxStreams)
	l.carriers = make(map[int]*carrierRef)
	l.budget = &budget{}
	l.budget.left.Store(l.env.cfg.LinkBudget)
	l.rttNanos = new(atomic.Int64)
	l.backoff = l.env.cfg.Backoff
	l.failures, l.permanent = 0, 0
	l.addrs.sessionUp()
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
	l.sched = ctx.Spawn(l.props(func() actor.Actor { return newScheduler(l.env, l.peer, p, maxUnacked) }))
	l.attach(ctx, m)
	l.env.links.add(l.self, l.strand)
	l.env.stats.linksUp.Add(1)
	l.armKeepalive()
	l.reverse = make(map[uint32]*actor.PID)
	l.bound = make(map[uint32]bool)
	l.reverseAt = make(map[uint32]string)
	l.answers = make(map[uint32]RemoteStatus)
	l.syncBinds(ctx) // the peer listens for our -R again
	attrs := []any{"peer", l.peer, "local", m.conn.LocalAddr().String(), "role", l.role.String(),
		"version", p.Version, "authenticated", m.authed, "encrypted", m.sealed, "sequenced", l.seq, "peer_key", l.peerKeyText()}
	if l.dialer != nil {
		attrs = append(attrs, "addr", l.dialer.String())
		if l.addrs.list() {
			attrs = append(attrs, "failover", l.addrs.position())
		}
	}
	l.env.log.Info("link up", attrs...)
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
	l.env.stats.linksUp.Add(-1)
	for _, pid := range l.streams {
		ctx.Stop(pid)
	}
	l.streams, l.streamOf, l.opens = nil, nil, nil
	for _, pid := range l.reverse { // the peer's -R ports are released at once
		ctx.Stop(pid)
	}
	l.reverse, l.reverseAt = nil, nil
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
	var away *goAwayError
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
// A dialling link redials after the backoff, at the next address of its
// failover list: the session is lost for good (one that could be resumed
// is not down yet).
func (l *linkActor) afterDown(ctx actor.Context) {
	if l.dialer != nil && !l.closing && !(l.env.cfg.SingleSession && l.gen > 0) {
		l.addrs.sessionLost()
		l.moved("link lost", false)
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
