package actors

// How a UDP flow's stream ends. A datagram stream has no half-close: UDP
// knows no end of a flow, and the only one sockmux gives it is the
// opener's (a UDP forward's session idle past --udp-idle, evicted past
// --udp-max, or moved off a pool member no longer live: udp.go). The
// opener's side then reads EOF and sends FIN; the side that dialled the
// target, whose connected UDP socket never reads an end, takes that FIN
// as the end of the flow both ways: it writes what came before it, stops
// reading and answers FIN, so both streams end within a round trip and
// the socket at the target closes. Before, each half waited for an end
// the other never sent, and both streams (and the target's socket) lived
// on until the link ended, the flow counting against its pool member
// (pool.go's load) all along.
//
// A flow another hub brought to a UDP pool's door here (pool_udp.go) is
// a session of the door's own, fed by a stream of this node that dialled
// the door: when that stream ends, the door's session for it ends at
// once (endDoorFlow), instead of idling out --udp-idle while counting
// against the edge it went to.

import (
	"net"
	"net/netip"

	"github.com/asynkron/protoactor-go/actor"
)

// datagramsEnd ends a datagram stream both ways once the peer has sent
// FIN (see above); a stream of bytes, or one whose reading has ended
// already, goes on as it was.
func (s *streamActor) datagramsEnd(ctx actor.Context) {
	if !s.datagram || s.readDone || s.netConn == nil {
		return
	}
	s.stopReading()
	s.giveBack(s.credit) // it reads no more
	s.sendFin(ctx)
	s.maybeClosed(ctx)
}

// doorFlowEnded tells a UDP pool's door that the stream feeding its
// session from the address from has ended.
type doorFlowEnded struct{ from string }

// endDoorFlow ends the session that one of this node's UDP pool doors,
// the one at target, holds for from: a socket of this node that dialled
// target for a stream that has ended. A target that is no door here does
// nothing.
func (e *env) endDoorFlow(target string, from net.Addr) {
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return
	}
	var pid *actor.PID
	e.pools.mu.Lock()
	for _, p := range e.pools.byAddr {
		if p.door == nil {
			continue
		}
		if d, ok := p.door.LocalAddr().(*net.UDPAddr); ok && d.AddrPort().Port() == ap.Port() && d.AddrPort().Addr().Unmap() == ap.Addr().Unmap() {
			pid = p.doorPID
			break
		}
	}
	e.pools.mu.Unlock()
	if pid != nil {
		e.send(pid, &doorFlowEnded{from: from.String()})
	}
}

// doorFlowEnded closes the door's session for m.from, if it has one: its
// stream to the edge ends, and stops counting against it.
func (u *udpListener) doorFlowEnded(m *doorFlowEnded) {
	if s := u.sessions[m.from]; s != nil {
		s.Close()
		delete(u.sessions, m.from)
		u.env.log.Debug("UDP session ended with the stream that brought it", "forward", u.fwd.String(), "client", m.from)
	}
}
