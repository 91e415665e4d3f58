package engine

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// faults injects this step's faults, until the network heals.
func (s *sim) faults() {
	if s.step >= simHealAt {
		return
	}
	live := s.live()
	switch r := s.rng.IntN(1000); {
	case r < 8 && len(live) > 1:
		s.cut(live[s.rng.IntN(len(live))])
	case r < 12 && len(live) > 0: // every carrier at once: the link waits to resume
		s.n.allCut++
		for _, c := range live {
			s.cut(c)
		}
		if s.expire && s.resumable() { // and waits in vain
			s.n.expired++
			for _, side := range s.sides {
				side.expireAt = s.step + simResumeWindow + s.rng.IntN(30)
			}
		}
	case r < 30 && len(live) < 8 && (len(live) > 0 || s.resumable()):
		s.addCarrier()
	case r < 40 && len(live) > 0:
		c := live[s.rng.IntN(len(live))]
		s.pause(c, !c.paused)
	}
	if len(s.live()) == 0 && s.resumable() && s.rng.IntN(20) == 0 {
		s.addCarrier() // the dialler resumes the link
	}
}

// heal ends every fault: a carrier up, none paused, every reader at full
// speed.
func (s *sim) heal() {
	if len(s.live()) == 0 && s.resumable() {
		s.addCarrier()
	}
	for _, c := range s.carriers {
		if c.alive && c.paused {
			s.pause(c, false)
		}
	}
	for _, side := range s.sides {
		for _, st := range side.inOrder() {
			st.reader = 16 << 10 // a stopped or slow reader is a fault too: at a few bytes a step no bound holds
		}
	}
}

// workload opens streams from either side and changes readers' speeds.
func (s *sim) workload() {
	if s.step >= simHealAt {
		return
	}
	if s.rng.IntN(50) == 0 {
		side := s.sides[s.rng.IntN(2)]
		mine, theirs := s.rng.IntN(256<<10), s.rng.IntN(256<<10)
		// The OPEN says how much each side will send, so the other can
		// check every byte; real OPENs carry a target instead.
		id, err := side.sess.Open(TargetDial, fmt.Sprintf("sim:%d:%d", theirs, mine))
		switch {
		case errors.Is(err, ErrGoingAway) || errors.Is(err, ErrStreamLimit) || errors.Is(err, ErrLinkDown):
			return
		case err != nil:
			s.fail("%s: Open: %v", side.name, err)
		}
		s.newStream(side, id, mine, theirs)
		s.n.streams++
		s.logf("%s opens %d (%d bytes out, %d back)", side.name, id, mine, theirs)
	}
	if s.rng.IntN(300) == 0 { // a reset, racing whatever is in flight (a FIN too)
		side := s.sides[s.rng.IntN(2)]
		if all := side.inOrder(); len(all) > 0 {
			st := all[s.rng.IntN(len(all))]
			if in := side.info(st); !in.Reset && in.State != StateClosed {
				if err := side.sess.Reset(st.id, CodeCancelled, "sim"); err != nil {
					s.fail("%s: Reset of %d: %v", side.name, st.id, err)
				}
				st.cut = true
				s.n.resets++
				s.logf("%s resets %d", side.name, st.id)
			}
		}
	}
	if s.rng.IntN(3000) == 0 { // GOAWAY mid-stream: streams open finish, no new ones
		side := s.sides[s.rng.IntN(2)]
		side.sess.GoAway()
		s.n.goaways++
		s.logf("%s says GOAWAY", side.name)
		for _, c := range s.live() {
			g := NewReason(TypeGoAway, 0, CodeShutdown, "sim")
			s.put(side, c, g)
			g.Release()
		}
	}
	if s.rng.IntN(50) == 0 {
		side := s.sides[s.rng.IntN(2)]
		for _, st := range side.inOrder() {
			switch s.rng.IntN(3) {
			case 0:
				st.reader = 0 // stopped
			case 1:
				st.reader = 1 + s.rng.IntN(2<<10) // slow
			default:
				st.reader = 16 << 10
			}
			break
		}
	}
}

func (s *sim) newStream(side *simSide, id uint32, mine, theirs int) *simStream {
	st := &simStream{id: id, size: mine, peerLen: theirs, seed: uint64(id)<<1 | uint64(side.idx), reader: 16 << 10}
	side.streams[id] = st
	side.order = append(side.order, id)
	return st
}

// produce writes each stream's next bytes (Write takes what its send
// credit allows) and its FIN once all is taken.
func (s *sim) produce(side *simSide) {
	for _, st := range side.inOrder() {
		if in := side.info(st); in.Reset || in.State == StateClosed || st.finSent {
			continue
		}
		for st.sent < st.size {
			n, err := side.sess.Write(st.id, simBytes(st.seed, st.sent, min(4*simChunk, st.size-st.sent)))
			if errors.Is(err, ErrStreamClosed) {
				break // the peer reset it meanwhile
			}
			if err != nil {
				s.fail("%s: Write on %d: %v", side.name, st.id, err)
			}
			if n == 0 {
				break // no credit: an EventWritable will come
			}
			st.sent += n
		}
		if st.sent == st.size && !st.finSent {
			if err := side.sess.CloseWrite(st.id); err != nil && !errors.Is(err, ErrStreamClosed) {
				s.fail("%s: FIN on %d: %v", side.name, st.id, err)
			}
			st.finSent = true
		}
	}
}

// pause stops or restarts carrier c: while paused it delivers nothing and
// its writers write nothing, so what the Sessions give it stays held; once
// it runs again they write what they held.
func (s *sim) pause(c *simCarrier, paused bool) {
	c.paused = paused
	s.n.pauses++
	s.logf("carrier %d paused=%v", c.id, paused)
	if !paused {
		for i, side := range s.sides {
			side.sess.Written(c.id, c.held[i])
			c.held[i] = 0
		}
	}
}

// transmit puts what the Session has to send on the carrier it chose (its
// Stripe, as in the daemon), and an ACK now and then on each carrier.
func (s *sim) transmit(side *simSide) {
	for {
		f, id := side.sess.Next()
		if f == nil {
			break
		}
		c := s.carrier(id)
		if c == nil || !c.alive {
			s.fail("%s: Next gave %v to carrier %d, which is gone", side.name, f, id)
		}
		s.put(side, c, f)
		if n := f.WireLen(); c.paused {
			c.held[side.idx] += n
			if c.held[side.idx] > simHighWater+s.chunk+MaxHeaderLen {
				s.fail("%s: carrier %d's writer holds %d bytes, past the high-water mark %d and a frame", side.name, id, c.held[side.idx], simHighWater)
			}
		} else {
			side.sess.Written(id, n)
		}
		f.Release()
	}
	// The ACK of what we received, on each carrier now and then. An ACK
	// lost with its carrier is said again: every 50 steps even when
	// nothing new arrived (the Link's ACK timer).
	again := s.step%50 == 0
	for _, c := range s.live() {
		if c.paused || !again && s.rng.IntN(3) != 0 {
			continue
		}
		if ack := side.sess.Ack(c.id, again); ack != nil {
			s.put(side, c, ack)
			ack.Release()
		}
	}
}

// deliver hands the frames due this step to their receivers.
func (s *sim) deliver() {
	for _, c := range s.carriers {
		if !c.alive || c.paused {
			continue
		}
		for from := range 2 {
			to := s.sides[1-from]
			lane := c.lanes[from]
			n := 0
			for n < len(lane) && lane[n].at <= s.step {
				if err := to.sess.Receive(c.id, lane[n].f); err != nil {
					s.fail("%s: %v", to.name, err)
				}
				n++
			}
			c.lanes[from] = lane[n:]
			s.events(to)
		}
	}
}

// events checks and acts on what the Session told side.
func (s *sim) events(side *simSide) {
	for _, ev := range side.sess.Events() {
		st := side.streams[ev.Stream]
		if ev.Kind != EventOpened && ev.Kind != EventRefused && ev.Kind != EventGoAway && st == nil {
			s.fail("%s: %v for stream %d, which it does not have", side.name, ev.Kind, ev.Stream)
		}
		switch ev.Kind {
		case EventOpened:
			var mine, theirs int
			fmt.Sscanf(ev.Target, "sim:%d:%d", &mine, &theirs)
			s.newStream(side, ev.Stream, mine, theirs)
			// A RST that came with the OPEN ended it already.
			if err := side.sess.Accept(ev.Stream); err != nil && !errors.Is(err, ErrStreamClosed) {
				s.fail("%s: Accept of %d: %v", side.name, ev.Stream, err)
			}
		case EventRefused:
			if ev.Cause != "shutdown" {
				s.fail("%s: OPEN %d refused: %s (%v)", side.name, ev.Stream, ev.Cause, ev.Reason)
			}
			s.n.refused++ // an OPEN that crossed our GOAWAY
			s.newStream(side, ev.Stream, 0, 0).told = true
		case EventData:
			n := ev.Frame.Len()
			same := bytes.Equal(ev.Frame.Bytes(), simBytes(st.seed^1, st.got, n))
			ev.Frame.Release()
			if !same {
				s.fail("%s: stream %d: the %d bytes at %d are not the sender's: delivered twice, lost or out of order", side.name, st.id, n, st.got)
			}
			st.got += n
			s.n.bytes += n
			if st.got > st.peerLen {
				s.fail("%s: stream %d: %d bytes, the peer sends %d", side.name, st.id, st.got, st.peerLen)
			}
		case EventFin:
			if st.got != st.peerLen {
				s.fail("%s: stream %d: FIN after %d of %d bytes: a short stream looks like a clean end", side.name, st.id, st.got, st.peerLen)
			}
			st.finGot = true
		case EventReset:
			if st != nil {
				st.told = true
			}
			if ev.Cause != "" { // peers that keep the rules never break one
				s.fail("%s: stream %d reset: the peer broke the %s rules: %v", side.name, ev.Stream, ev.Cause, ev.Reason)
			}
		case EventGoAway:
			s.logf("%s: the peer goes away", side.name)
		}
	}
}

type allowAll struct{}

func (allowAll) Allows(string) bool { return true }

// read lets each stream's reader consume what was delivered; the Session
// grants it back.
func (s *sim) read(side *simSide) {
	for _, st := range side.inOrder() {
		if n := min(side.info(st).Unread, st.reader); n > 0 {
			side.sess.Consumed(st.id, n, s.now(), 10*time.Millisecond)
		}
	}
}

// done tells whether every stream has ended both ways on both sides.
func (s *sim) done() bool {
	for _, side := range s.sides {
		for _, st := range side.inOrder() {
			if in := side.info(st); !in.Reset && (!st.finSent || !st.finGot || in.Unread > 0) {
				return false
			}
		}
	}
	if s.sides[0].down != s.sides[1].down {
		return false // one side's window is still running out
	}
	// Down, an OPEN lost with the link leaves a stream at its opener only.
	return s.sides[0].down || len(s.sides[0].streams) == len(s.sides[1].streams)
}
