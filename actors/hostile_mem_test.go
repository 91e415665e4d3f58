package actors

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// codeOverload is the GOAWAY code of a link closed because its peer does
// not read its replies.
const codeOverload = engine.CodeOverload

// Never-reading peers. The listener runs in this process, so its memory is
// this process's heap: it is sampled while the attack runs and compared
// with a bound, and once the peer has gone it must come back down.
const (
	// memSlack is how far above the baseline the heap may stay once the
	// hostile peer has gone and the garbage is collected.
	memSlack = 32 << 20
	// memGood is the good link's transfer during the attack.
	memGood = 4 << 20
	// memGuard bounds the attacks that end by themselves.
	memGuard = 15 * time.Second
)

// heapInUse is the heap's in-use spans, as runtime.MemStats.HeapInuse.
func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

// countingLog counts the listener's log records without keeping them (a
// Recorder would hold every one in the heap being measured), and notes
// whether the listener closed a link as overloaded.
type countingLog struct {
	records    atomic.Int64
	overloaded atomic.Bool
}

func (c *countingLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (c *countingLog) Handle(_ context.Context, r slog.Record) error {
	c.records.Add(1)
	if r.Message == "link overloaded; closing it" {
		c.overloaded.Store(true)
	}
	return nil
}
func (c *countingLog) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *countingLog) WithGroup(string) slog.Handler      { return c }

// memAttack is one never-reading attack in progress.
type memAttack struct {
	h     *hostile
	logs  *countingLog // the listener's
	p     *wirepeer.Peer
	stop  chan struct{} // closed when the attack is to end
	hose  string        // a server that writes until its connection fails
	fired atomic.Int64  // what hose wrote
	// What the attack did, for its verdict: frames written in whole, the
	// last PING's value, the write error that ended it.
	frames int
	last   uint64
	err    error
}

// stopped reports whether the attack is to end.
func (m *memAttack) stopped() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// flood writes batches that next appends until n frames are written, the
// attack is stopped or a write fails.
func (m *memAttack) flood(n, batch int, next func(b []byte, i int) []byte) {
	var b []byte
	for m.frames < n && !m.stopped() {
		b = b[:0]
		k := min(batch, n-m.frames)
		for i := range k {
			b = next(b, m.frames+i)
		}
		if m.err = m.p.Write(b); m.err != nil {
			return
		}
		m.frames += k
	}
}

// memCase is a never-reading peer.
type memCase struct {
	name   string
	budget int64 // the listener's LinkBudget (the default when 0)
	peer   wirepeer.Options
	// bound is how far the heap may grow above its baseline while the
	// attack runs.
	bound uint64
	// attack runs on its own goroutine and returns when it is done or
	// m.stop is closed; window, when set, is how long it lasts at least
	// (an attack with no end of its own).
	attack func(m *memAttack)
	window time.Duration
	// settled, when set, says the listener has worked through what the
	// attack sent (or the hostile link went down, which also ends it).
	settled func(m *memAttack) bool
	// verdict checks, on the test goroutine, what the listener did.
	verdict func(t *testing.T, m *memAttack)
}

// TestHostileNeverReading: peers that stop reading their socket while
// they make the listener produce for them. The listener's memory stays
// bounded whatever the peer announced, the good link keeps working, and
// the memory comes back once the peer has gone.
func TestHostileNeverReading(t *testing.T) {
	// A receive buffer below a loopback segment (64 KiB) would make the
	// reading at the end crawl (the window opens by a probe every 200 ms):
	// 128 KiB backs the listener up as soon and reads back fast.
	never := wirepeer.Options{RecvBuffer: 128 << 10, Window: engine.MaxWindow}
	fourStreams := func(m *memAttack) {
		var b []byte
		for range 4 {
			b = m.p.Append(b, engine.TypeOpen, m.p.NextID(), wirepeer.OpenPayload(engine.TargetDial, m.hose, nil))
		}
		if m.err = m.p.Write(b); m.err == nil {
			m.frames = 4
		}
		<-m.stop
	}
	sourcesRead := func(t *testing.T, m *memAttack) {
		if n := m.fired.Load(); n < 1<<20 {
			t.Errorf("the sources wrote %d bytes: the listener never read them (were the OPENs refused?)", n)
		}
	}
	cases := []memCase{
		// (a) The scheduler holds at most LinkBudget/4 queued per link,
		// whatever window the peer announced.
		{name: "1 GiB window, 4 streams from a fast source", peer: never, bound: 200 << 20,
			attack: fourStreams, window: 2 * time.Second, verdict: sourcesRead},
		{name: "1 GiB window, 4 streams from a fast source, small budget", budget: 4 << 20, peer: never, bound: 64 << 20,
			attack: fourStreams, window: time.Second, verdict: sourcesRead},
		{name: "1 GiB window, 4 streams from a fast source, CapSeq link", budget: 4 << 20, bound: 64 << 20,
			peer:   wirepeer.Options{RecvBuffer: 128 << 10, Window: engine.MaxWindow, Seq: true},
			attack: fourStreams, window: time.Second, verdict: sourcesRead},
		// (b) PONGs are coalesced: only the latest waits for a carrier
		// whose queue is full; the link stays up, the last PING is
		// answered, and most of the flood is not. The bound of (b) and (c)
		// leaves room for the frames the listener has read and not yet
		// handled: a flood of 20-byte frames costs it tens of MiB even
		// from a peer that reads.
		{name: "PING flood", peer: never, bound: 128 << 20,
			attack: func(m *memAttack) {
				m.flood(pingFlood(), 1000, func(b []byte, i int) []byte {
					return m.p.Append(b, engine.TypePing, 0, wirepeer.PingPayload(uint64(i)))
				})
				if m.err == nil {
					m.last = 0x1a57_0000_0000_0000 | uint64(m.frames)
					m.err = m.p.SendPing(m.last)
				}
			},
			verdict: func(t *testing.T, m *memAttack) {
				if m.err != nil {
					t.Fatalf("the flood's write failed after %d PINGs: %v; want the link kept", m.frames, m.err)
				}
				_, before, err := m.p.Expect(memGuard, func(f *wirepeer.Frame) bool {
					return f.Type == engine.TypePong && string(f.Payload) == string(wirepeer.PingPayload(m.last))
				})
				if err != nil {
					t.Fatalf("the last PING of the flood was not answered: %v", err)
				}
				pongs := 1
				for _, f := range before {
					if f.Type == engine.TypePong {
						pongs++
					}
				}
				if !raceEnabled && pongs > (m.frames+1)*9/10 { // how many get through before the buffers fill varies; most must not
					t.Errorf("%d PONGs for %d PINGs from a peer that did not read: they were queued, not coalesced", pongs, m.frames+1)
				}
			}},
		// (c) Replies that cannot be coalesced (OPEN_FAILs for OPENs the
		// policy refuses) pile up for a peer that does not read: past 1 MiB
		// of them the link is closed with GOAWAY code 16, and what the
		// peer sends after that is not acted on.
		{name: "refused OPEN flood", peer: never, bound: 128 << 20,
			attack: func(m *memAttack) {
				m.flood(openFloodN, 1000, func(b []byte, _ int) []byte {
					return m.p.Append(b, engine.TypeOpen, m.p.NextID(), wirepeer.OpenPayload(engine.TargetDial, refusedTarget, nil))
				})
			},
			settled: func(m *memAttack) bool {
				return m.logs.overloaded.Load() || m.h.pair.A.Stats().refusals.Load() >= int64(m.frames)
			},
			verdict: func(t *testing.T, m *memAttack) {
				// Read now: the GOAWAY waits behind the replies already
				// written. All of them answered with the link still open
				// is the overload the listener did not see.
				fails := 0
				for {
					f, err := m.p.ReadFrame(hostileGuard)
					if err != nil {
						if !wirepeer.IsEnd(err) {
							t.Errorf("after %d OPEN_FAILs: %v; want GOAWAY code %d and the link closed", fails, err, codeOverload)
							return
						}
						break
					}
					if f.Type == engine.TypeOpenFail {
						if fails++; fails == m.frames && m.p.GoAway() == nil {
							t.Errorf("all %d refused OPENs were answered and the link is still open; want GOAWAY code %d (peer does not read its replies) once 1 MiB of replies waited",
								fails, codeOverload)
							return
						}
					}
				}
				// The GOAWAY is the carrier's last frame, behind replies
				// the peer did not read: it may not get through before the
				// final flush's deadline. If it does, it says overload; the
				// listener's log says so either way.
				if g := m.p.GoAway(); g != nil && g.Code != codeOverload {
					t.Errorf("the link closed with GOAWAY %v; want code %d (peer does not read its replies)", g, codeOverload)
				}
				if !m.logs.overloaded.Load() {
					t.Error("the listener did not log closing the link as overloaded")
				}
			}},
	}
	for _, mc := range cases {
		t.Run(mc.name, func(t *testing.T) { runMem(t, mc) })
	}
}

// Flood sizes: each is many times what the listener should let wait for a
// peer that does not read.
const (
	pingFloodN = 1_000_000 // more PONGs than the kernel's buffers hold: coalescing shows
	openFloodN = 150_000
)

// runMem is the body every never-reading case shares.
func runMem(t *testing.T, mc memCase) {
	downs := make(chan LinkEvent, 16)
	logs := &countingLog{}
	h := newHostile(t, nil, func(_ *hostile, c *Config) {
		c.Logger = slog.New(logs)
		// The floods never read: a carrier write stalled for three
		// keepalives would drop them (TestCarrierNotReadDropped) before
		// a slow (-race) flood is over.
		c.Keepalive = time.Minute
		up := c.OnLink
		c.OnLink = func(ev LinkEvent) {
			up(ev)
			if !ev.Up {
				select {
				case downs <- ev:
				default:
				}
			}
		}
		if mc.budget != 0 {
			c.LinkBudget = mc.budget
		}
	})
	m := &memAttack{h: h, logs: logs, stop: make(chan struct{})}
	m.hose = firehose(t, &m.fired)
	good := testkit.Dial(t, h.pair.B.ForwardAddrs()[0])
	runtime.GC()
	runtime.GC()
	base := heapInUse()
	s := sampleHeap(base, mc.bound)

	m.p = wirepeer.Connect(t, h.pair.LinkAddr, mc.peer)
	attackDone := make(chan struct{})
	go func() {
		defer close(attackDone)
		mc.attack(m)
	}()
	goodDone := make(chan error, 1)
	go func() { goodDone <- testkit.EchoCheck(good, 21, memGood) }()

	// The attack lasts until it is done by itself (and, for one with no
	// end of its own, for its window), the listener has worked through
	// what it was sent (settled), and the good transfer is over; or until
	// the heap passed the bound.
	var window <-chan time.Time
	if mc.window > 0 {
		window = time.After(mc.window)
	}
	guard := time.After(memGuard)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	attackOver, goodOver, linkDown := false, false, false
	var goodErr error
wait:
	for !(goodOver && attackOver && (mc.settled == nil || linkDown || mc.settled(m))) {
		select {
		case <-tick.C:
		case <-attackDone: // an attack with a window ends only at m.stop
			attackOver, attackDone = mc.window == 0, nil
		case <-window:
			attackOver = true
		case <-downs:
			linkDown = true
		case goodErr = <-goodDone:
			goodOver = true
		case <-s.over:
			break wait
		case <-guard:
			break wait
		}
	}
	close(m.stop)
	if attackDone != nil {
		<-attackDone
	}
	if !goodOver {
		goodErr = <-goodDone
	}
	if goodErr != nil {
		t.Errorf("the good link's transfer during the attack: %v", goodErr)
	}
	if n := h.pair.B.Stats().reconnects.Load(); n != 0 {
		t.Errorf("the good link was dropped and redialled %d times during the attack", n)
	}
	mc.verdict(t, m)
	peak := s.end()
	t.Logf("heap in use: %d MiB before, peak %d MiB; %d frames sent, %d bytes from the sources, %d refusals, %d log records",
		base>>20, peak>>20, m.frames, m.fired.Load(), h.pair.A.Stats().refusals.Load(), logs.records.Load())
	if peak-base > mc.bound {
		t.Errorf("the listener's heap grew by %d MiB for a peer that does not read (%d → %d MiB); the bound is %d MiB",
			(peak-base)>>20, base>>20, peak>>20, mc.bound>>20)
	}

	// The peer goes: what the listener held for it is given back. A CapSeq
	// link outlives its carriers for the resume window unless the peer
	// said GOAWAY (§15.4), so that peer says it before it goes.
	if m.p.Seq() {
		_ = m.p.Send(engine.TypeGoAway, 0, wirepeer.ReasonPayload(engine.CodeNormal, "leaving"))
	}
	m.p.Close()
	if !linkDown {
		select {
		case <-downs:
		case <-time.After(memGuard):
			t.Fatal("the hostile link did not go down on the listener after its peer left")
		}
	}
	hostileWaitFor(t, "the hostile link's actors to stop", func() bool { return len(h.pair.A.Status().Links) == 1 })
	runtime.GC()
	runtime.GC()
	if after := heapInUse(); after > base+memSlack {
		t.Errorf("with the peer gone, the heap is at %d MiB, %d MiB above the baseline (%d MiB): what the listener held for it was not given back",
			after>>20, (after-base)>>20, base>>20)
	}
	h.closeListener()
}

// heapSampler records the peak of the heap in use, every few
// milliseconds, from the attack's start to the end of its verdict.
type heapSampler struct {
	over chan struct{} // closed once the heap passed base+bound
	stop chan struct{}
	done chan uint64
}

func sampleHeap(base, bound uint64) *heapSampler {
	s := &heapSampler{over: make(chan struct{}), stop: make(chan struct{}), done: make(chan uint64, 1)}
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		peak, over := base, false
		for {
			peak = max(peak, heapInUse())
			if !over && peak-base > bound {
				over = true
				close(s.over)
			}
			select {
			case <-tick.C:
			case <-s.stop:
				s.done <- peak
				return
			}
		}
	}()
	return s
}

// end stops sampling and returns the peak.
func (s *heapSampler) end() uint64 {
	close(s.stop)
	return <-s.done
}

// hostileWaitFor polls cond (a state no event announces) until it holds,
// failing the test after a generous limit.
func hostileWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(memGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pingFlood is the PING flood's size: under -race a flood the kernel's
// buffers absorb, which still bounds memory but cannot show coalescing.
func pingFlood() int {
	if raceEnabled {
		return 200_000
	}
	return pingFloodN
}
