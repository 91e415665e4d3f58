package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sockmux/carriers"
	"sockmux/engine"
)

// readBufferSize is a carrier reader's buffer: a few frames, so one read
// syscall brings several small frames.
const readBufferSize = 256 << 10

// linkActor is one link to one peer: the handshake, the stream table and
// the dispatch of incoming frames, and, on the dialling side, redial with
// backoff. It supervises its Carrier, its Scheduler and its Streams.
type linkActor struct {
	env    *env
	self   *actor.PID
	dialer carriers.Dialer // nil for a link we accepted
	conn   net.Conn        // the carrier being dialled or handshaken
	peer   string

	backoff time.Duration
	timer   *time.Timer
	cancel  context.CancelFunc
	closing bool
	waiters []*actor.PID // Close's requests, answered once down

	// The session: set while the link is up.
	gen        uint64
	up         bool
	authed     bool
	policy     *engine.TargetPolicy
	goingAway  bool
	role       engine.Role
	params     engine.Params
	carrier    *actor.PID
	sched      *actor.PID
	streams    map[uint32]*actor.PID
	reverse    map[uint32]*actor.PID // listeners for the peer's -R, by its id
	budget     *budget
	rttNanos   *atomic.Int64 // the last PING round trip, shared with the streams
	nextID     uint32
	lastPeerID uint32
	downReason error // set by this side when it ends the session
	peerAway   error // the peer's GOAWAY, if it sent one

	// Liveness: frames received, and keepalive ticks with none.
	framesIn, framesSeen uint64
	rtt                  time.Duration
	upSince              time.Time
	silentTicks          int
	keepalive            *time.Timer
	drainTimer           *time.Timer
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
		if m.gen != l.gen || !l.up {
			m.f.Release()
			return
		}
		l.framesIn++
		l.dispatch(ctx, m.f)
	case *keepaliveTick:
		l.tick(ctx, m.gen)
	case *statusReq:
		ls := &LinkStatus{Peer: l.peer, Up: l.up, Role: l.role.String(), Authenticated: l.authed, RTT: l.rtt,
			Streams: len(l.streams), Since: l.upSince}
		if l.up {
			ls.Carriers = 1
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
			l.scheduleRedial()
			return
		}
		l.handshake(m.conn)
	case *redial:
		if !l.closing && !l.up && l.conn == nil && l.cancel == nil {
			l.dial()
		}
	case *handshakeDone:
		l.conn = nil
		if l.closing {
			l.closeConn(m.conn)
			l.stopIfDone(ctx)
			return
		}
		if m.err != nil {
			l.closeConn(m.conn)
			l.env.log.Warn("link handshake failed", "peer", l.peer, "err", m.err)
			l.afterDown(ctx)
			return
		}
		l.sessionUp(ctx, m)
	case *carrierDown:
		if m.gen == l.gen && l.up {
			l.sessionDown(ctx, m.err)
		}
	case *openStream:
		l.open(ctx, m)
	case *streamDone:
		delete(l.streams, m.id)
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
		if l.dialer != nil && !l.closing && !l.up && l.conn == nil && l.cancel == nil {
			if l.timer != nil {
				l.timer.Stop()
			}
			l.env.log.Info("redialling now", "peer", l.peer)
			l.backoff = l.env.cfg.Backoff
			l.dial()
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
	case *actor.Stopped:
		l.env.linkStopped(l.self)
	}
}

// closeConn closes a carrier off the actor: some take a while (a command
// is given a moment to exit).
func (l *linkActor) closeConn(c net.Conn) { l.env.goroutine(func() { c.Close() }) }

func (l *linkActor) dial() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	self, d := l.self, l.dialer
	l.env.goroutine(func() {
		c, err := d.Dial(ctx)
		l.env.send(self, &dialDone{conn: c, err: err})
	})
}

func (l *linkActor) scheduleRedial() {
	d := time.Duration(float64(l.backoff) * (0.75 + rand.Float64()/2))
	l.backoff = min(2*l.backoff, l.env.cfg.MaxBackoff)
	l.env.log.Info("link redial scheduled", "peer", l.peer, "in", d.Round(time.Millisecond))
	self := l.self
	l.timer = time.AfterFunc(d, func() { l.env.send(self, &redial{}) })
}

// handshake runs the HELLO (and AUTH) exchange on conn in a goroutine.
func (l *linkActor) handshake(conn net.Conn) {
	l.conn = conn
	self, cfg, role, env := l.self, l.env.cfg, l.role, l.env
	l.env.goroutine(func() {
		hs := &handshaker{
			hello: &engine.Hello{
				MinVersion: env.minVersion, MaxVersion: env.maxVersion, Role: role,
				MaxPayload: cfg.MaxPayload, InitialWindow: cfg.Window,
			},
			key: cfg.Key, maxSkew: cfg.MaxSkew, replay: env.replay, now: env.now,
		}
		res := hs.run(conn, cfg.HandshakeTimeout)
		res.conn = conn
		l.env.send(self, res)
	})
}

// shutdown says GOAWAY (the peer opens no more streams), lets the open
// streams finish for up to drain, then closes the carrier.
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
		l.stopIfDone(ctx)
		return
	}
	l.downReason = errShuttingDown
	ctx.Send(l.sched, engine.NewReason(engine.TypeGoAway, 0, engine.CodeShutdown, "shutting down"))
	if len(l.streams) == 0 || drain <= 0 {
		l.closeSession(ctx)
		return
	}
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

// closeSession flushes what the Scheduler handed the carrier and closes
// it; the carrier reports down and the session ends.
func (l *linkActor) closeSession(ctx actor.Context) {
	ctx.Send(l.carrier, &closeCarrier{})
}

func (l *linkActor) stopTimers() {
	if l.keepalive != nil {
		l.keepalive.Stop()
		l.keepalive = nil
	}
	if l.drainTimer != nil {
		l.drainTimer.Stop()
		l.drainTimer = nil
	}
}

// armKeepalive schedules the next keepalive tick.
func (l *linkActor) armKeepalive() {
	if l.env.cfg.Keepalive <= 0 {
		return
	}
	self, gen := l.self, l.gen
	l.keepalive = time.AfterFunc(l.env.cfg.Keepalive, func() { l.env.send(self, &keepaliveTick{gen: gen}) })
}

// tick PINGs the peer and drops the link when no frame at all came for
// three intervals. Any frame counts, so a busy link whose PONG is late is
// never taken for dead (and PONGs are control frames, sent before data).
func (l *linkActor) tick(ctx actor.Context, gen uint64) {
	if gen != l.gen || !l.up {
		return
	}
	if l.framesIn == l.framesSeen {
		l.silentTicks++
	} else {
		l.silentTicks, l.framesSeen = 0, l.framesIn
	}
	if l.silentTicks >= 3 {
		if l.downReason == nil {
			l.downReason = fmt.Errorf("%w for %v", ErrPeerSilent, 3*l.env.cfg.Keepalive)
			l.env.log.Warn("peer silent; dropping the link", "peer", l.peer, "keepalive", l.env.cfg.Keepalive)
			ctx.Send(l.carrier, &closeCarrier{last: engine.NewReason(engine.TypeGoAway, 0, engine.CodeTimeout, "peer silent")})
		}
		return
	}
	ctx.Send(l.sched, engine.NewPing(engine.TypePing, uint64(time.Now().UnixNano())))
	l.armKeepalive()
}

func (l *linkActor) sessionUp(ctx actor.Context, m *handshakeDone) {
	if l.gen > 0 {
		l.env.stats.Reconnects.Add(1)
	}
	l.gen++
	l.upSince = time.Now()
	l.up, l.goingAway, l.downReason, l.peerAway = true, false, nil, nil
	l.framesIn, l.framesSeen, l.silentTicks = 0, 0, 0
	l.params = m.params
	l.authed = m.authed
	l.policy = l.env.cfg.AllowTargets
	if l.policy == nil {
		l.policy = engine.LoopbackTargets
		if m.authed {
			l.policy = engine.AnyTarget
		}
	}
	l.streams = make(map[uint32]*actor.PID)
	l.budget = &budget{}
	l.budget.left.Store(l.env.cfg.LinkBudget)
	l.rttNanos = new(atomic.Int64)
	l.nextID, l.lastPeerID = l.role.FirstStreamID(), 0
	l.backoff = l.env.cfg.Backoff
	p := m.params
	l.sched = ctx.Spawn(l.env.props(func() actor.Actor { return newScheduler(l.env, p) }))
	conn, r, gen, sched := m.conn, m.reader, l.gen, l.sched
	l.carrier = ctx.Spawn(l.env.props(func() actor.Actor {
		return newCarrier(l.env, conn, r, p.Version, gen, l.self, sched)
	}))
	l.env.links.add(l.self)
	l.env.stats.LinksUp.Add(1)
	l.armKeepalive()
	// A first PING now: streams size their windows by the round trip.
	ctx.Send(l.sched, engine.NewPing(engine.TypePing, uint64(time.Now().UnixNano())))
	l.reverse = make(map[uint32]*actor.PID)
	for i, r := range l.env.cfg.Remotes {
		b := engine.Bind{ID: uint32(i + 1), Addr: r.Bind}
		if r.UDP {
			b.Proto = 1
		}
		ctx.Send(l.sched, engine.NewBind(b))
	}
	l.env.log.Info("link up", "peer", l.peer, "local", conn.LocalAddr().String(), "role", l.role.String(),
		"version", p.Version, "authenticated", m.authed)
	if f := l.env.cfg.OnLink; f != nil {
		f(LinkEvent{Peer: l.peer, Up: true})
	}
}

func (l *linkActor) sessionDown(ctx actor.Context, err error) {
	switch {
	case l.downReason != nil:
		err = l.downReason
	case l.peerAway != nil:
		err = l.peerAway
	}
	l.up = false
	l.stopTimers()
	l.env.links.remove(l.self)
	l.env.stats.LinksUp.Add(-1)
	for _, pid := range l.streams {
		ctx.Stop(pid)
	}
	l.streams = nil
	for _, pid := range l.reverse { // the peer's -R ports are released at once
		ctx.Stop(pid)
	}
	l.reverse = nil
	ctx.Stop(l.carrier)
	ctx.Stop(l.sched)
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("carrier closed by peer: %w", err)
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

// protocolError ends the session: the peer is told why in a GOAWAY, and the
// reason is what the link-down log line says.
func (l *linkActor) protocolError(ctx actor.Context, err error) {
	if l.downReason != nil && errors.Is(l.downReason, engine.ErrProtocol) {
		return
	}
	l.downReason = err
	l.env.log.Warn("link protocol error", "peer", l.peer, "err", err)
	ctx.Send(l.carrier, &closeCarrier{last: engine.NewReason(engine.TypeGoAway, 0, engine.CodeProtocol, err.Error())})
}

func (l *linkActor) dispatch(ctx actor.Context, f *engine.Frame) {
	if l.downReason != nil && errors.Is(l.downReason, engine.ErrProtocol) { // closing after a protocol error
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
		ctx.Send(l.sched, engine.NewPing(engine.TypePong, v))
	case engine.TypePong:
		if v, err := engine.ParsePing(f.Bytes()); err == nil {
			l.rtt = time.Since(time.Unix(0, int64(v)))
			l.rttNanos.Store(int64(l.rtt))
			l.env.log.Debug("pong", "peer", l.peer, "rtt", l.rtt)
		}
		f.Release()
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
	if !l.env.cfg.AllowListen.Allows(b.Addr) {
		reason := fmt.Sprintf("listening on %s is not allowed by this side's --allow-listen policy", b.Addr)
		l.env.log.Warn("reverse forward refused", "peer", l.peer, "listen", b.Addr, "reason", reason)
		l.env.stats.Refusals.Add(1)
		reply(engine.CodeRefused, reason)
		return
	}
	self := l.self
	if b.Proto == 1 {
		pc, err := listenUDP(b.Addr) // bind: no waiting
		if err != nil {
			l.env.log.Warn("reverse forward refused", "peer", l.peer, "listen", b.Addr+"/udp", "reason", err)
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
		l.env.log.Warn("reverse forward refused", "peer", l.peer, "listen", b.Addr, "reason", err)
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
		l.env.log.Warn("BIND_REPLY for an unknown forward", "peer", l.peer, "id", r.ID)
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
			reason := fmt.Sprintf("target %s is not allowed by this side's --allow-target policy", target)
			l.env.log.Warn("stream refused", "peer", l.peer, "stream", id, "target", target, "reason", reason)
			l.env.stats.Refusals.Add(1)
			ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeRefused, reason))
			return
		}
	case engine.TargetForward: // a connection to one of our -R: its target is ours to choose
		n, err := strconv.ParseUint(target, 10, 32)
		if err != nil || n == 0 || n > uint64(len(l.env.cfg.Remotes)) {
			f.Release()
			l.env.log.Warn("stream refused", "peer", l.peer, "stream", id, "reason", "no such reverse forward", "id", target)
			ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeUnknownTarget, "no reverse forward "+target))
			return
		}
		target, datagram = l.env.cfg.Remotes[n-1].Target, l.env.cfg.Remotes[n-1].UDP
	default:
		f.Release()
		l.env.log.Warn("stream refused", "peer", l.peer, "stream", id, "reason", "unknown target kind")
		ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeUnknownTarget, fmt.Sprintf("target kind %d", o.Kind)))
		return
	}
	if l.closing {
		f.Release()
		ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeShutdown, "shutting down"))
		return
	}
	if len(l.streams) >= l.env.cfg.MaxStreams {
		f.Release()
		reason := fmt.Sprintf("limit of %d streams per link reached", l.env.cfg.MaxStreams)
		l.env.log.Warn("stream refused", "peer", l.peer, "stream", id, "target", target, "reason", reason)
		l.env.stats.Refusals.Add(1)
		ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeTooManyStream, reason))
		return
	}
	if len(o.Data) > int(l.params.RecvWindow) {
		f.Release()
		ctx.Send(l.sched, engine.NewReason(engine.TypeRst, id, engine.CodeFlowControl, "first bytes exceed the window"))
		return
	}
	st := &streamActor{env: l.env, id: id, link: l.self, sched: l.sched, target: target, openFrame: f, datagram: datagram,
		proxyHere: o.Kind == engine.TargetForward && target == engine.TargetSOCKS, policy: l.policy,
		state: engine.NewAccepter(id), recv: engine.NewRecvWindow(l.params.RecvWindow, l.env.cfg.MaxWindow), params: l.params, budget: l.budget, rtt: l.rttNanos}
	l.streams[id] = ctx.Spawn(l.env.props(func() actor.Actor { return st }))
	l.env.stats.StreamsOpened.Add(1)
}

// open starts a stream for a connection a forward accepted.
func (l *linkActor) open(ctx actor.Context, m *openStream) {
	if !l.up || l.goingAway || l.closing {
		l.env.log.Warn("no link for connection; closing it", "forward", m.forward, "client", m.conn.RemoteAddr().String())
		tellOpened(m.opened, ErrNoLink)
		m.conn.Close()
		return
	}
	if len(l.streams) >= l.env.cfg.MaxStreams {
		l.env.log.Warn("stream limit reached; closing connection", "forward", m.forward,
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
			l.env.log.Warn("proxy client sent more before its reply than the peer's window takes; closing it",
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
