package engine

import (
	"fmt"
	"math"
	"time"
)

// Path is the sending side's view of one carrier of a striped link: what
// it was given, what arrived, how fast it delivers and whether it stalled.
// The Scheduler keeps one per carrier and Stripe chooses among them.
type Path struct {
	// ID names the carrier.
	ID int
	// Queued is the bytes handed to the carrier's writer and not yet
	// written (kept by the Scheduler).
	Queued int
	// Sent is the sequenced bytes put on the carrier; Acked is how many
	// of those the peer's ACKs say arrived.
	Sent, Acked uint64
	// RTT is the least round trip its PINGs measured (0: none yet).
	RTT time.Duration
	// Stalled is a carrier that delivered nothing for a while although it
	// had bytes to deliver: it gets nothing until it delivers again.
	Stalled bool

	progressAt time.Time // when Acked last grew, or the path became busy
	// ackWait is the longest recent wait for delivery to show (decaying):
	// ACKs that come back behind a deep queue the other way make a slow
	// but live path, which must not be taken for stalled.
	ackWait     time.Duration
	sampleAt    time.Time
	sampleAcked uint64
	samples     [rateSamples]float64 // delivery rate, bytes per second
	sampleN     int
}

// Rate sampling: a sample is the bytes delivered over at least
// sampleEvery; the rate is the largest of the last rateSamples, so a
// moment when the sender had little to send does not make a path look
// slow, while a path that really slowed down is seen as such within
// rateSamples × sampleEvery.
const (
	rateSamples = 8
	sampleEvery = 40 * time.Millisecond
	// MinStall is the least time a path with bytes in flight may deliver
	// nothing before it is taken for stalled; a path's own RTT raises it.
	MinStall = 250 * time.Millisecond
)

// InFlight is what the path was given that has not arrived.
func (p *Path) InFlight() uint64 { return p.Sent - p.Acked }

// Rate is the path's delivery rate in bytes per second (0: not measured).
func (p *Path) Rate() float64 {
	r := 0.0
	for _, s := range p.samples[:min(p.sampleN, rateSamples)] {
		r = max(r, s)
	}
	return r
}

// OnSend records n sequenced bytes put on the path at now.
func (p *Path) OnSend(n int, now time.Time) {
	if p.Sent == p.Acked {
		p.progressAt = now // idle until now: the stall clock starts here
		if p.sampleAt.IsZero() || now.Sub(p.sampleAt) > sampleEvery {
			p.sampleAt, p.sampleAcked = now, p.Acked
		}
	}
	p.Sent += uint64(n)
}

// OnAck records the peer's count of bytes arrived on the path. It reports
// whether the path was stalled and now delivers again. A count beyond
// what was sent is a protocol error.
func (p *Path) OnAck(bytes uint64, now time.Time) (resumed bool, err error) {
	if bytes > p.Sent {
		return false, fmt.Errorf("%w: ACK of %d bytes on carrier %d, which was given %d", ErrMalformed, bytes, p.ID, p.Sent)
	}
	if bytes <= p.Acked {
		return false, nil
	}
	p.Acked = bytes
	if !p.Stalled { // a stall is not a slow delivery to get used to
		p.ackWait = max(now.Sub(p.progressAt), p.ackWait*7/8)
	}
	p.progressAt = now
	if dt := now.Sub(p.sampleAt); dt >= sampleEvery {
		p.samples[p.sampleN%rateSamples] = float64(p.Acked-p.sampleAcked) / dt.Seconds()
		p.sampleN++
		p.sampleAt, p.sampleAcked = now, p.Acked
	}
	if p.Stalled {
		p.Stalled = false
		return true, nil
	}
	return false, nil
}

// stallAfter is how long the path may deliver nothing while it has bytes
// in flight: MinStall, or more on a path with a long round trip or whose
// deliveries have lately been slow to show.
func (p *Path) stallAfter() time.Duration { return max(MinStall, 4*p.RTT, 3*p.ackWait) }

// Stripe chooses, for each frame, the carrier that will deliver it first.
// It is used by one goroutine (the Scheduler).
type Stripe struct {
	Paths []*Path
	// AckDelay is the longest the peer holds an arrival before it
	// acknowledges it: bytes it holds that long still count as in
	// flight, so each path's cap leaves room for them.
	AckDelay time.Duration
	// Interactive is set while requests go (Sender.Next, Interactivity):
	// the caps are tighter and the peer's ACK delay InteractiveAckDelay.
	Interactive bool
}

// In-flight caps. A carrier given more than its path holds queues the
// rest in its TCP send buffer and the path's bottleneck, below anything
// sockmux can reorder: a small frame sent after it waits for all of it
// (with one bulk stream, 2 MB, 100 ms and more on a 20 MB/s path). So a
// striped link gives each path no more than about what it delivers in a
// round trip (rate × (RTT + the peer's ACK delay + capSlack), with
// capGain to spare, so the path can show it delivers more) and the
// backlog waits in the Scheduler's Queue, where control frames and the
// other streams' turns come first.
//
// While the link is interactive (Stripe.Interactive: a request went in the
// last InteractiveFor, see Interactivity) the gain is interactiveGain and the peer
// acknowledges within InteractiveAckDelay, so each path's bottleneck
// queue, which a request waits behind, holds about half as much: on the
// bonding benchmark's paths a 64-byte request's p50 beside bulk went from
// 2.0 to 1.4–1.5 × the fast path's round trip, the bulk stream's rate
// unchanged. Not always: with one bulk stream alone the tight caps cost
// BenchmarkStripe's four carriers about a third, and a gain of 1.0 cost
// the bulk stream a fifth (BENCHMARKS.md, "Bonding").
const (
	capGain         = 1.25
	interactiveGain = 1.1
	capSlack        = time.Millisecond
	// MinCapTime is the least round trip a cap is sized for: on a path
	// whose round trip is tiny (loopback, a LAN), what delays the ACKs
	// is the two ends' scheduling, not the path, and a cap sized by the
	// PING's round trip would starve it.
	MinCapTime = 5 * time.Millisecond
	// minCapFrames is the least cap, in frames of the largest size the
	// path is given (Chunk): a frame goes while the path holds less than
	// its cap, so a cap is passed by up to a frame.
	minCapFrames = 2
	// SmallFrame is the wire size up to which a frame is small: it may go
	// to a path SmallAllowance beyond its cap, so a request does not wait
	// for an ACK behind a stream's bulk.
	SmallFrame     = 2 << 10
	SmallAllowance = 32 << 10
	// idleBytes is what a path may hold and still count as idle: what it
	// carried says nothing of how fast it can deliver (a rate measured
	// while it carried requests is a few kB/s), so it is judged by its
	// round trip alone.
	idleBytes = 4 << 10
	// idleRate is the least rate an idle path is taken to have.
	idleRate = 1e6
)

// Cap is how many bytes p may have in flight on a striped link: about its
// delivery rate times its round trip (see capGain), at least two of the
// largest frames it is given; unlimited while its rate or round trip is
// not measured yet. The one carrier of an unstriped link is not capped:
// that cut a 64-byte request's wait beside bulk to 0.3–0.6× (the
// fast-alone-bulk case of BenchmarkBondLatency) but cost a single 20 MB/s
// carrier 1–29% of its throughput in BenchmarkStripe (carriers=1).
func (s *Stripe) Cap(p *Path) uint64 {
	r := p.Rate()
	if r == 0 || p.RTT == 0 {
		return math.MaxUint64
	}
	frame := s.Chunk(p)
	if frame == 0 {
		frame = DefaultMaxPayload
	}
	gain, ack := capGain, s.AckDelay
	if s.Interactive {
		gain, ack = interactiveGain, InteractiveAckDelay
	}
	t := max(p.RTT+ack+capSlack, MinCapTime)
	return max(uint64(gain*r*t.Seconds()), minCapFrames*uint64(MaxHeaderLen+frame))
}

// Frames on a striped link are cut to what a path sends in about
// chunkTime, at least MinChunk. The receiver delivers frames in link
// order, so everything sent after a frame on a slow path waits until that
// frame has arrived whole: a 64 KiB frame takes 13 ms more at 5 MB/s, 26
// ms at 20 Mbit/s.
const (
	chunkTime = 2 * time.Millisecond
	// MinChunk is the least payload a cut leaves a frame.
	MinChunk = 8 << 10
)

// Chunk is the largest DATA payload a frame sent on p should have: what p
// delivers in chunkTime, at least MinChunk; 0 when there is no need to cut
// (one path, a rate not measured yet, or a path fast enough for the
// largest frames).
func (s *Stripe) Chunk(p *Path) int {
	r := p.Rate()
	if len(s.Paths) < 2 || r == 0 {
		return 0
	}
	c := max(int(r*chunkTime.Seconds()), MinChunk)
	if c >= DefaultMaxPayload {
		return 0
	}
	return c
}

// Add starts a path for carrier id.
func (s *Stripe) Add(id int, now time.Time) *Path {
	p := &Path{ID: id, progressAt: now, sampleAt: now}
	s.Paths = append(s.Paths, p)
	return p
}

// Remove forgets carrier id's path.
func (s *Stripe) Remove(id int) {
	for i, p := range s.Paths {
		if p.ID == id {
			s.Paths = append(s.Paths[:i], s.Paths[i+1:]...)
			return
		}
	}
}

// Find returns carrier id's path, or nil.
func (s *Stripe) Find(id int) *Path {
	for _, p := range s.Paths {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// Pick returns the path on which a frame of size bytes would arrive
// first, judged by what each already has in flight and its delivery rate
// (a path not yet measured is taken to be as fast as the fastest; an idle
// one is judged by its round trip), among those not stalled; nil when
// there is none, or when that path has highWater bytes queued already or
// holds its Cap (a small frame: SmallAllowance more).
//
// A path that slows down thus gets less, and one that stops delivering
// gets nothing. When the best path is full the frame waits for it (its
// next drain or ACK pumps again) rather than going to a worse one: a
// burst spilled onto a slow path arrives late, the receiver's reorder
// buffer waits for it and the stream stalls behind it, so the whole
// stream runs at the slow path's pace; a request sent there waits its
// round trip. A path at its cap is another matter for a large frame:
// the cap is about what it delivers in a round trip, so the others may
// take more meanwhile, and a bulk stream keeps every path busy.
func (s *Stripe) Pick(size, highWater int) *Path {
	var allow uint64
	if size <= SmallFrame {
		allow = SmallAllowance
	}
	full := func(p *Path) bool {
		c := s.Cap(p)
		return p.Queued >= highWater || (c != math.MaxUint64 && p.InFlight() >= c+allow)
	}
	if len(s.Paths) == 1 { // nothing to choose, nor to cap (see Cap)
		if p := s.Paths[0]; !p.Stalled && p.Queued < highWater {
			return p
		}
		return nil
	}
	fastest := 0.0
	for _, p := range s.Paths {
		fastest = max(fastest, p.Rate())
	}
	var best *Path
	bestAt := 0.0
	for _, p := range s.Paths {
		if p.Stalled || (allow == 0 && full(p)) {
			continue
		}
		var at float64
		if fastest == 0 { // nothing measured yet: fewest bytes in flight
			at = float64(p.InFlight())
		} else {
			r := p.Rate()
			if r == 0 {
				r = fastest
			}
			if p.InFlight() <= idleBytes {
				r = max(r, idleRate)
			}
			at = float64(p.InFlight()+uint64(size))/r + p.RTT.Seconds()/2
		}
		if best == nil || at < bestAt {
			best, bestAt = p, at
		}
	}
	if best == nil || best.Queued >= highWater || (allow > 0 && full(best)) {
		return nil
	}
	return best
}

// Stalls marks, and appends to dst, the paths that had bytes in flight
// and delivered none of them for their stall time, as long as some other
// path is not stalled: with nowhere else to send, waiting is all there is.
func (s *Stripe) Stalls(dst []*Path, now time.Time) []*Path {
	healthy := 0
	for _, p := range s.Paths {
		if !p.Stalled {
			healthy++
		}
	}
	for _, p := range s.Paths {
		if healthy <= 1 {
			break
		}
		if !p.Stalled && p.InFlight() > 0 && now.Sub(p.progressAt) > p.stallAfter() {
			p.Stalled = true
			p.samples, p.sampleN = [rateSamples]float64{}, 0
			healthy--
			dst = append(dst, p)
		}
	}
	return dst
}
