package actors

// A Link's carriers: dialling them, their handshakes, joins to a striped
// link, and what a carrier brings or loses.

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

// scheduleAck acknowledges at once when a carrier brought ackEvery bytes,
// and otherwise within the link's ACK delay.
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
		l.ackTimer = time.AfterFunc(l.ackDelay(), func() { env.send(self, &ackTick{}) })
		return
	}
	l.ackTimer.Reset(l.ackDelay())
}

// ackDelay is how long an arrival may wait for its ACK on this link: on a
// striped one while requests arrive (engine.Interactivity), the peer caps each carrier
// tightly by what it has in flight, ACK delay included, so a shorter delay
// keeps less queued on each path for a request to wait behind.
func (l *linkActor) ackDelay() time.Duration {
	return engine.AckDelayFor(len(l.carriers), l.interactive.Active(time.Now()))
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
	self, d, at := l.self, l.dialer, l.addrs.at
	l.env.goroutine(func() {
		c, err := d.Dial(ctx)
		l.env.send(self, &dialDone{conn: c, err: err, at: at})
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
			Capabilities: engine.CapUnbind | engine.CapPool | engine.CapStreamOrder,
		},
		key: env.policies().Key, maxSkew: cfg.MaxSkew, replay: env.replay, now: env.now,
	}
	if l.ownKey != nil {
		hs.key = l.ownKey // a listener of its own (ServeKeyed): its key alone
	} else {
		l.identityHandshake(hs)
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
		res := hs.run(conn, cfg.HandshakeTimeout) // res.conn: conn, or conn sealed
		if res.err == nil && role == engine.RoleAccepter && res.params.Capabilities&engine.CapSeq != 0 && !res.link.Join {
			if !env.registerLink(res.link.ID, self) {
				res.err = fmt.Errorf("%w: link id %v is already in use", engine.ErrMalformed, res.link.ID)
				refuseConn(res.conn, res.params.Version, engine.CodeProtocol, res.err.Error())
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
					l.downReason = fmt.Errorf("%w: the peer no longer has it", errResumeExpired)
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
		time.AfterFunc(joinLookupEvery, func() { l.env.send(self, &joinRetry{done: m, attempt: attempt + 1}) })
		return
	}
	l.conn = nil
	if pid != nil {
		ctx.Send(pid, &carrierJoin{done: m})
	} else {
		l.env.warn("join refused: no such link", "peer", l.peer, "link", m.link.ID)
		l.env.stats.refusals.Add(1)
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
		l.env.stats.refusals.Add(1)
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
	case !l.sameIdentity(m):
		refuse(engine.CodeAuth, "the joining carrier showed another identity than the link's")
	case m.params.Version != l.params.Version:
		refuse(engine.CodeProtocol, fmt.Sprintf("carrier speaks version %d, the link %d", m.params.Version, l.params.Version))
	case len(l.carriers) >= MaxCarriers:
		refuse(engine.CodeRefused, fmt.Sprintf("the link has %d carriers, the most it takes", MaxCarriers))
	default:
		if l.name == "" {
			l.peer = m.conn.RemoteAddr().String()
		}
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
	q := newFrameQueue(m.conn, m.params.Version)
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
	if src := newRawSource(conn); src != nil {
		r.SetSource(src) // the handshake is over: its first-byte detector has done its work
	} else if sc, ok := conn.(sealedCarrier); ok {
		if src := newRawSource(sc.NetConn()); src != nil {
			sc.SetSource(src) // the records, read with the data path's system calls
		}
	}
	c := &carrierRef{id: id, local: conn.LocalAddr().String()}
	c.pid = ctx.Spawn(l.props(func() actor.Actor { return newCarrier(l.env, id, conn, r, v, l.self, sched, q, l.strand) }))
	l.carriers[id] = c
	// A PING at once: streams size their windows by the round trip, and
	// the Scheduler weighs carriers by theirs.
	ctx.Send(l.sched, &pinned{carrier: id, f: engine.NewPing(engine.TypePing, uint64(time.Now().UnixNano()))})
	if l.resuming {
		l.resuming, l.refusedInRow = false, 0
		if l.resumeTimer != nil {
			l.resumeTimer.Stop()
			l.resumeTimer = nil
		}
		if !l.goingAway && !l.closing {
			l.env.links.add(l.self, l.strand) // new streams may come again
		}
		l.env.stats.resumes.Add(1)
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
		switch {
		case l.ending:
		case l.peerAway != nil:
			// The peer said GOAWAY and closes its carriers one by one:
			// an orderly end, not a loss.
			l.env.log.Debug("carrier closed by the peer going away", "peer", l.peer, "carriers", len(l.carriers))
		default:
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
