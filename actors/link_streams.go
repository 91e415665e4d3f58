package actors

// A Link's frames and streams: dispatching what arrives, the peer's OPENs
// and BINDs, and streams for connections a forward accepted.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
)

func (l *linkActor) dispatch(ctx actor.Context, c *carrierRef, f *engine.Frame) {
	if l.downReason != nil && (errors.Is(l.downReason, engine.ErrProtocol) || errors.Is(l.downReason, errPeerNotReading)) {
		// Closing after a protocol error, or on a peer that does not
		// read: nothing more it sends is acted on (or answered).
		f.Release()
		return
	}
	in, err := engine.ClassifyInbound(f, l.seq)
	if !in.KeepsFrame() {
		f.Release()
	}
	if err != nil {
		l.protocolError(ctx, err)
		return
	}
	switch in.Kind {
	case engine.InboundOpen:
		l.accept(ctx, f)
	case engine.InboundStream:
		if pid := l.streams[f.Stream]; pid != nil {
			ctx.Send(pid, f)
			return
		}
		l.env.stats.droppedFrames.Add(1)
		f.Release()
	case engine.InboundCredit:
		ctx.Send(l.sched, &creditIn{id: f.Stream, n: in.Credit})
	case engine.InboundPing:
		ctx.Send(l.sched, &pinned{carrier: c.id, f: engine.NewPing(engine.TypePong, in.Ping)})
	case engine.InboundPong:
		if in.Ping != 0 { // 0: a PONG that did not parse, or not our PING's
			l.rtt = time.Since(time.Unix(0, int64(in.Ping)))
			l.rttNanos.Store(int64(l.rtt))
			ctx.Send(l.sched, &pathRTT{carrier: c.id, rtt: l.rtt})
			l.env.log.Debug("pong", "peer", l.peer, "rtt", l.rtt)
		}
	case engine.InboundAck:
		ctx.Send(l.sched, &ackIn{carrier: c.id, ack: in.Ack})
	case engine.InboundBind:
		l.bind(ctx, in.Bind)
	case engine.InboundUnbind:
		l.unbind(ctx, in.Unbind)
	case engine.InboundBindReply:
		l.bindReply(in.BindReply)
	case engine.InboundGoAway:
		l.goingAway = true
		l.env.links.remove(l.self)
		l.peerAway = &goAwayError{Reason: in.Reason}
		l.env.log.Info("peer going away", "peer", l.peer, "reason", in.Reason.String())
	}
}

// bind listens for the peer's -R, where --allow-listen allows it.
func (l *linkActor) bind(ctx actor.Context, b engine.Bind) {
	reply := func(code engine.Code, text string) {
		ctx.Send(l.sched, engine.NewBindReply(engine.BindReply{ID: b.ID, Code: code, Text: text}))
	}
	// The policies judge the address this side would bind.
	addr := l.bindAddr(b.Addr)
	asked := b
	asked.Addr = addr
	v := engine.PeerBind(asked, engine.BindRequest{
		Bound: func(id uint32) bool { _, ok := l.reverse[id]; return ok },
		Count: len(l.reverse), MaxBinds: l.env.cfg.MaxBinds,
		AllowListen: l.env.policies().AllowListen, PermitListen: engine.PolicyFunc(l.permitListen),
	})
	if v.Refuse != nil {
		if v.Cause != "bad-bind" {
			// The reply tells the peer it was its peer's rule; the log
			// here says it was ours.
			l.env.warn("reverse forward refused", cause(v.Cause), "peer", l.peer, "listen", b.Addr, "reason", v.Reason)
			l.env.stats.refusals.Add(1)
		}
		ctx.Send(l.sched, v.Refuse)
		return
	}
	self := l.self
	udp := b.Proto == 1
	if b.Pool != "" {
		m := newPoolMember(l.env, self, b.ID)
		bound, err := l.env.joinPool(addr, b.Pool, udp, m)
		if err != nil {
			l.env.warn("pooled reverse forward refused", "peer", l.peer, "listen", forwardAddr(addr, udp), "pool", b.Pool, "reason", err)
			reply(engine.CodeBindFailed, err.Error())
			return
		}
		key := poolKey(addr, udp)
		l.reverse[b.ID] = ctx.Spawn(l.env.props(func() actor.Actor { return &poolMemberActor{env: l.env, key: key, m: m} }))
		l.reverseAt[b.ID] = forwardAddr(bound, udp) + " pool " + b.Pool
		l.env.log.Info("reverse forward joined its pool", "peer", l.peer, "listen", forwardAddr(bound, udp), "pool", b.Pool,
			"members", l.env.poolMembers(key), "id", b.ID)
		reply(engine.CodeNormal, bound)
		return
	}
	if udp {
		pc, err := listenUDP(addr) // bind: no waiting
		if err != nil {
			l.env.warn("reverse forward refused", "peer", l.peer, "listen", addr+"/udp", "reason", err)
			reply(engine.CodeBindFailed, err.Error())
			return
		}
		l.reverse[b.ID] = ctx.Spawn(l.env.props(func() actor.Actor { return newReverseUDPListener(l.env, pc, self, b.ID) }))
		l.reverseAt[b.ID] = pc.LocalAddr().String() + "/udp"
		l.env.log.Info("reverse forward listening for the peer", "peer", l.peer, "listen", pc.LocalAddr().String()+"/udp", "id", b.ID)
		reply(engine.CodeNormal, pc.LocalAddr().String())
		return
	}
	ln, err := listenTCP(addr) // bind and listen: no waiting
	if err != nil {
		l.env.warn("reverse forward refused", "peer", l.peer, "listen", addr, "reason", err)
		reply(engine.CodeBindFailed, err.Error())
		return
	}
	l.reverse[b.ID] = ctx.Spawn(l.env.props(func() actor.Actor { return newReverseListener(l.env, ln, self, b.ID) }))
	l.reverseAt[b.ID] = ln.Addr().String()
	l.env.log.Info("reverse forward listening for the peer", "peer", l.peer, "listen", ln.Addr().String(), "id", b.ID)
	reply(engine.CodeNormal, ln.Addr().String())
}

// forwardAddr is addr as logged: "/udp" after a datagram forward's.
func forwardAddr(addr string, udp bool) string {
	if udp {
		return addr + "/udp"
	}
	return addr
}

// bindAddr is where this side listens for a peer's BIND of addr: with
// --remote-bind-addr, a BIND for all addresses ("*", "", 0.0.0.0 or ::)
// binds that host instead, so hubs on one machine, or a hub with several
// addresses, each bind their own.
func (l *linkActor) bindAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || l.env.cfg.RemoteBindAddr == "" {
		return addr
	}
	switch host {
	case "", "*", "0.0.0.0", "::":
		return net.JoinHostPort(l.env.cfg.RemoteBindAddr, port)
	}
	return addr
}

// bindReply is the peer's answer to one of our -R.
func (l *linkActor) bindReply(r engine.BindReply) {
	fwd := l.env.remote(r.ID)
	if fwd == nil {
		l.env.warn("BIND_REPLY for an unknown forward", "peer", l.peer, "id", r.ID)
		return
	}
	if r.Code == engine.CodeNormal {
		l.env.log.Info("reverse forward listening", "peer", l.peer, "remote", r.Text, "target", fwd.Target)
		l.answers[r.ID] = RemoteStatus{Listening: r.Text}
		l.bindBackoff = 0
		return
	}
	reason := engine.Reason{Code: r.Code, Text: r.Text}
	l.answers[r.ID] = RemoteStatus{Refused: reason.String()}
	err := fmt.Errorf("%w: -R %s: %v", errForwardRefused, fwd.Bind, reason)
	args := []any{"peer", l.peer, "listen", fwd.Bind, "reason", err}
	// A socket the peer could not make is taken, maybe by a link of ours
	// that is gone and that it holds until its resume window ends (an
	// edge restarted at once): it is asked for again later, as long as
	// this session lasts. A refusal by rule is final.
	retry := r.Code == engine.CodeBindFailed && !l.env.cfg.ExitOnForwardFailure
	if retry {
		delete(l.bound, r.ID)
		if l.bindRetry == nil {
			l.bindBackoff = min(max(2*l.bindBackoff, minBindBackoff), maxBindBackoff)
			self, gen := l.self, l.gen
			l.bindRetry = time.AfterFunc(l.bindBackoff, func() { l.env.send(self, &bindRetryTick{gen: gen}) })
		}
		args = append(args, "retry_in", l.bindBackoff)
	}
	l.env.log.Warn("reverse forward refused by the peer", args...)
	if l.env.cfg.ExitOnForwardFailure {
		l.env.fail(err)
	}
}

// The retries of a -R whose socket the peer could not make: 2 s, then
// doubling to 30 s, the default resume window, so a port held for a link
// that waits to resume is asked for again soon after it is let go.
const (
	minBindBackoff = 2 * time.Second
	maxBindBackoff = 30 * time.Second
)

// bindRetryTick is a link's time to ask again for the -R the peer could
// not listen for, in session gen.
type bindRetryTick struct{ gen uint64 }

// accept applies the engine's verdict on an OPEN from the peer.
func (l *linkActor) accept(ctx actor.Context, f *engine.Frame) {
	id := f.Stream
	v := l.opens.PeerOpen(id, f.Bytes(), engine.OpenRequest{
		Policy: l.openPolicy(), Reverse: l.reverseForward, RecvWindow: l.params.RecvWindow, Closing: l.closing})
	switch {
	case v.Err != nil:
		f.Release()
		l.protocolError(ctx, v.Err)
		return
	case v.Refuse != nil:
		f.Release()
		if v.Cause != "shutdown" && v.Cause != "window" {
			// The frame tells the peer it was its peer's rule; the log
			// here says it was ours.
			reason, _ := engine.ParseReason(v.Refuse.Bytes())
			text := reason.Text
			switch v.Cause {
			case "allow-target":
				text = "not allowed by this side's " + engine.PolicyRule(l.targetPolicy(), v.Open.Target)
			case "unknown forward":
				text = "no such reverse forward"
			}
			l.env.warn("stream refused", cause(v.Cause), "peer", l.peer, "stream", id, "target", v.Open.Target, "reason", text)
		}
		if v.Cause == "allow-target" || v.Cause == "max-streams" {
			l.env.stats.refusals.Add(1)
		}
		ctx.Send(l.sched, v.Refuse)
		return
	}
	// Every stream costs a file descriptor: near the limit, the host that
	// holds the most is refused first (hostshare.go).
	host := peerHost(l.peer)
	share, ok, held, total := l.env.hosts.admit(host)
	if !ok {
		f.Release()
		l.opens.Ended(id)
		text := fmt.Sprintf("this side is near its file descriptor limit, and host %s holds %d of the %d streams its peers opened", host, held, total)
		l.env.warn("stream refused", cause("fd-share"), "peer", l.peer, "stream", id, "target", v.Open.Target, "reason", text)
		l.env.stats.refusals.Add(1)
		ctx.Send(l.sched, engine.NewReason(engine.TypeOpenFail, id, engine.CodeTooManyStream, text))
		return
	}
	ctx.Send(l.sched, &streamDeclared{id: id})
	st := &streamActor{env: l.env, id: id, link: l.self, peer: l.peer, sched: l.sched, target: v.Target, openFrame: f, datagram: v.Datagram,
		proxyHere: v.Open.Kind == engine.TargetForward && v.Target == forward.TargetSOCKS, policy: l.targetPolicy(), share: share,
		side: engine.NewStreamSide(engine.NewAccepter(id), l.params.RecvWindow, l.env.cfg.MaxWindow), params: l.params, budget: l.budget, rtt: l.rttNanos}
	l.spawnStream(ctx, id, st)
	l.env.stats.StreamsOpened.Add(1)
}

// reverseForward is the engine's view of our -R with wire id id.
func (l *linkActor) reverseForward(id uint32) (engine.ReverseForward, bool) {
	f := l.env.remote(id)
	if f == nil {
		return engine.ReverseForward{}, false
	}
	return engine.ReverseForward{Target: f.Target, UDP: f.UDP}, true
}

// open starts a stream for a connection a forward accepted.
func (l *linkActor) open(ctx actor.Context, m *openRequest) {
	if !l.up || l.goingAway || l.closing {
		l.env.warn("no link for connection; resetting it", "forward", m.forward, "client", m.conn.RemoteAddr().String())
		tellOpened(m.opened, errNoLink)
		closeWith(m.conn, errNoLink)
		m.unload()
		return
	}
	// What the client already sent rides in the OPEN: a non-blocking
	// read, not a wait.
	maxEarly := min(int(l.params.SendWindow), int(l.params.SendMax)-3-len(m.target))
	var first *engine.Buffer
	var err error
	if m.first != nil { // a proxy client's bytes after its request
		if len(m.first) > maxEarly {
			l.env.warn("proxy client sent more before its reply than the peer's window takes; closing it",
				"forward", m.forward, "bytes", len(m.first), "window", maxEarly)
			m.conn.Close()
			m.unload()
			return
		}
		if len(m.first) > 0 {
			first = engine.GetBuffer(len(m.first))
			copy(first.B, m.first)
		}
	} else if first, err = newSockReader(m.conn).peek(maxEarly); err != nil && !errors.Is(err, io.EOF) {
		l.env.log.Debug("client gone before its stream opened", "forward", m.forward, "err", err)
		m.conn.Close()
		m.unload()
		return
	}
	// OPEN leaves here, at allocation, so OPENs go out in id order.
	id, idErr := l.opens.NextID()
	if idErr != nil {
		l.env.warn("no stream for connection; resetting it", "forward", m.forward,
			"client", m.conn.RemoteAddr().String(), "reason", idErr)
		l.env.stats.refusals.Add(1)
		tellOpened(m.opened, idErr)
		if first != nil {
			engine.PutBuffer(first)
		}
		closeWith(m.conn, idErr)
		m.unload()
		return
	}
	var data []byte
	if first != nil {
		data = first.B
	}
	state := engine.NewOpener(id)
	_ = state.Send(engine.TypeOpen)
	open := engine.NewOpen(id, m.kind, m.target, data)
	l.env.stats.BytesOut.Add(int64(len(data)))
	if first != nil {
		engine.PutBuffer(first)
	}
	target := m.target
	if m.kind == engine.TargetForward {
		// The OPEN names the peer's -R by its id; the logs name it by
		// where this side listens for it too.
		bind, _, _ := strings.Cut(m.forward, "->")
		target = "the peer's -R " + bind + " (id " + m.target + ")"
	}
	st := &streamActor{env: l.env, id: id, link: l.self, peer: l.peer, sched: l.sched, target: target, netConn: m.conn, datagram: m.datagram,
		side: engine.NewStreamSide(state, l.params.RecvWindow, l.env.cfg.MaxWindow), params: l.params, budget: l.budget, rtt: l.rttNanos, clientEOF: errors.Is(err, io.EOF),
		reply: m.reply, opened: m.opened, load: m.load}
	pid := l.spawnStream(ctx, id, st)
	// The OPEN, and the stream known and attached to its actor (whose
	// grants reach it after its start): one message. OPENs still leave
	// in id order, each sent here.
	ctx.Send(l.sched, &streamAttached{id: id, conn: pid, used: len(data), open: open})
	l.env.stats.StreamsOpened.Add(1)
}

func listenUDP(addr string) (*net.UDPConn, error) {
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.ListenUDP("udp", a)
}

// spawnStream starts st as a child of the Link, which learns of its end
// from protoactor's Terminated (childStopped).
func (l *linkActor) spawnStream(ctx actor.Context, id uint32, st *streamActor) *actor.PID {
	if l.streamProps == nil {
		l.streamProps = l.env.propsHanded(l.strand, &l.nextStream)
	}
	l.nextStream = st
	pid := ctx.Spawn(l.streamProps)
	l.streams[id] = pid
	l.streamOf[pid.Id] = id
	return pid
}

// childStopped forgets a stream whose actor has stopped (protoactor tells
// a parent of each child's end), and ends a draining link once its last
// stream is gone; a reverse listener the peer's UNBIND stopped is logged
// as closed. The streams of a session already down were forgotten
// with it, so a late Terminated finds nothing.
func (l *linkActor) childStopped(ctx actor.Context, who *actor.PID) {
	if bind, ok := l.unbinding[who.Id]; ok {
		delete(l.unbinding, who.Id)
		l.env.log.Info("reverse forward closed at the peer's request", "peer", l.peer, "id", bind)
		return
	}
	id, ok := l.streamOf[who.Id]
	if !ok {
		return
	}
	delete(l.streamOf, who.Id)
	delete(l.streams, id)
	if l.opens != nil {
		l.opens.Ended(id)
	}
	if l.closing && l.up && len(l.streams) == 0 {
		l.closeSession(ctx)
	}
}
