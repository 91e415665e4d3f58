package actors

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// refusedTarget is a target the listener's default policy refuses to an
// unauthenticated peer: it is not loopback.
const refusedTarget = "192.0.2.1:9"

// openFlood sends n OPENs to target in one write and returns their ids.
func openFlood(t *testing.T, p *wirepeer.Peer, n int, target string) []uint32 {
	t.Helper()
	var b []byte
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = p.NextID()
		b = p.Append(b, engine.TypeOpen, ids[i], wirepeer.OpenPayload(engine.TargetDial, target, nil))
	}
	check(t, p.Write(b))
	return ids
}

// answers reads until each of ids has its answer (OPEN_OK, OPEN_FAIL or
// RST) and returns them by id.
func answers(t *testing.T, p *wirepeer.Peer, ids []uint32) map[uint32]*wirepeer.Frame {
	t.Helper()
	want := make(map[uint32]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	got := make(map[uint32]*wirepeer.Frame, len(ids))
	for len(got) < len(ids) {
		f, _, err := p.Expect(hostileGuard, func(f *wirepeer.Frame) bool {
			return want[f.Stream] && (f.Type == engine.TypeOpenOK || f.Type == engine.TypeOpenFail || f.Type == engine.TypeRst)
		})
		if err != nil {
			t.Fatalf("%d of %d OPENs answered: %v", len(got), len(ids), err)
		}
		if prev := got[f.Stream]; prev != nil {
			t.Fatalf("stream %d answered twice: %v, then %v", f.Stream, prev, f)
		}
		got[f.Stream] = f
	}
	return got
}

// failCode is an OPEN_FAIL's code, or -1 for any other frame.
func failCode(f *wirepeer.Frame) int {
	if f.Type != engine.TypeOpenFail {
		return -1
	}
	r, err := f.Reason()
	if err != nil {
		return -1
	}
	return int(r.Code)
}

// warnings counts the records at warning level or above.
func warnings(rec *testkit.Recorder) int {
	n := 0
	for _, r := range rec.Records() {
		if r.Level >= slog.LevelWarn {
			n++
		}
	}
	return n
}

// TestHostileStreams: stream ids, OPEN floods, frames for streams that are
// not there (or no more), stream state and flow-control violations.
func TestHostileStreams(t *testing.T) {
	openThen := func(first, second uint32) func(*testing.T, *hostile, *wirepeer.Peer) {
		return func(t *testing.T, h *hostile, p *wirepeer.Peer) {
			check(t, p.Open(first, h.echo, nil))
			check(t, p.Open(second, h.echo, nil))
		}
	}
	// openHeld opens a stream to the held server and waits for OPEN_OK.
	openHeld := func(t *testing.T, h *hostile, p *wirepeer.Peer) uint32 {
		id := p.NextID()
		check(t, p.Open(id, h.held, nil))
		expectOn(t, p, id, engine.TypeOpenOK, 0)
		return id
	}
	refusal := func(kind engine.TargetKind, target string, code engine.Code) func(*testing.T, *hostile, *wirepeer.Peer) {
		return func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
			id := p.NextID()
			check(t, p.Send(engine.TypeOpen, id, wirepeer.OpenPayload(kind, target, nil)))
			expectOn(t, p, id, engine.TypeOpenFail, code)
		}
	}
	cases := []hostileCase{
		// Stream ids (§6).
		{name: "OPEN of an even id", attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) { check(t, p.Open(2, h.echo, nil)) },
			want: closes, code: engine.CodeProtocol},
		{name: "OPEN ids out of order", attack: openThen(5, 3), want: closes, code: engine.CodeProtocol},
		{name: "OPEN id reused", attack: openThen(1, 1), want: closes, code: engine.CodeProtocol},
		{name: "OPEN of the largest id, then of a smaller one", attack: openThen(0xFFFFFFFF, 1), want: closes, code: engine.CodeProtocol},
		{name: "OPEN ids that skip are accepted",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				check(t, p.Open(1, h.echo, nil))
				check(t, p.Open(101, h.echo, nil))
				for id, f := range answers(t, p, []uint32{1, 101}) {
					if f.Type != engine.TypeOpenOK {
						t.Fatalf("stream %d: %v, want OPEN_OK", id, f)
					}
				}
				echoOn(t, p, 101, "skipped ids")
			},
			want: stays},

		// Refused OPENs.
		{name: "OPEN to a target the policy forbids", attack: refusal(engine.TargetDial, refusedTarget, engine.CodeRefused), want: stays},
		{name: "OPEN of an unknown kind", attack: refusal(7, "127.0.0.1:1", engine.CodeUnknownTarget), want: stays},
		{name: "OPEN of a reverse forward the listener does not have", attack: refusal(engine.TargetForward, "3", engine.CodeUnknownTarget), want: stays},
		{name: "OPEN whose first bytes exceed the window",
			node: func(_ *hostile, c *Config) { c.Window = 4096 },
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				id := p.NextID()
				check(t, p.Open(id, h.echo, make([]byte, 5000)))
				expectOn(t, p, id, engine.TypeRst, engine.CodeFlowControl)
			},
			want: stays},

		// OPEN floods, read.
		{name: "OPEN flood past max-streams",
			node: func(_ *hostile, c *Config) { c.MaxStreams = 32 },
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				ids := openFlood(t, p, 3000, h.echo)
				got := answers(t, p, ids)
				ok := 0
				for i, id := range ids {
					f := got[id]
					switch {
					case i < 32 && f.Type != engine.TypeOpenOK:
						t.Errorf("stream %d, within the limit of 32: %v, want OPEN_OK", id, f)
					case i >= 32 && failCode(f) != int(engine.CodeTooManyStream):
						t.Errorf("stream %d, past the limit of 32: %v, want OPEN_FAIL code %d", id, f, engine.CodeTooManyStream)
					case f.Type == engine.TypeOpenOK:
						ok++
					}
				}
				if ok != 32 {
					t.Errorf("%d streams opened, want the limit, 32", ok)
				}
				echoOn(t, p, ids[0], "the open streams carry on")
				echoOn(t, p, ids[31], "all of them")
			},
			want: stays},
		{name: "OPEN flood to a refused target",
			attack: func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
				ids := openFlood(t, p, 3000, refusedTarget)
				for id, f := range answers(t, p, ids) {
					if failCode(f) != int(engine.CodeRefused) {
						t.Fatalf("stream %d: %v, want OPEN_FAIL code %d", id, f, engine.CodeRefused)
					}
				}
			},
			want: stays},
		// env.warn (actors/node.go) is the node's rate-limited warning for
		// "what a peer can repeat ... a refused OPEN": one line per cause
		// per interval. A flood of refusals must not be a flood of lines.
		{name: "refused OPENs are logged at a bounded rate",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				before := warnings(h.pair.ALog)
				answers(t, p, openFlood(t, p, 2000, refusedTarget))
				if n := warnings(h.pair.ALog) - before; n > 10 {
					t.Errorf("2000 refused OPENs logged %d warnings; a peer can repeat them at will, so they must be rate-limited", n)
				}
			},
			want: stays},

		// Frames for streams that are not there, or no more (§7.4, §10).
		{name: "frames for unknown streams are dropped",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				before := h.pair.A.Stats().droppedFrames.Load()
				check(t, p.Data(99, []byte("nobody")))
				check(t, p.Send(engine.TypeFin, 101, nil))
				check(t, p.Rst(103, engine.CodeCancelled, ""))
				check(t, p.Send(engine.TypeOpenOK, 105, nil))
				check(t, p.Send(engine.TypeOpenFail, 107, wirepeer.ReasonPayload(engine.CodeRefused, "")))
				check(t, p.Credit(109, 1000))
				check(t, p.Data(110, []byte("an id of the listener's parity")))
				skipped, err := p.RoundTrip(hostileGuard)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range skipped {
					if f.Stream >= 99 {
						t.Errorf("the listener answered a frame for an unknown stream: %v", f)
					}
				}
				if n := h.pair.A.Stats().droppedFrames.Load() - before; n < 6 {
					t.Errorf("%d frames counted dropped, want at least 6", n)
				}
			},
			want: stays},
		{name: "frames after RST are ignored",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				id := openHeld(t, h, p)
				check(t, p.Rst(id, engine.CodeCancelled, "gone"))
				check(t, p.Data(id, []byte("late")))
				check(t, p.Send(engine.TypeFin, id, nil))
				check(t, p.Credit(id, 1000))
				check(t, p.Rst(id, engine.CodeCancelled, "again"))
				skipped, err := p.RoundTrip(hostileGuard)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range skipped {
					if f.Stream == id {
						t.Errorf("the listener answered a frame of a reset stream: %v (an RST is never answered)", f)
					}
				}
				next := p.NextID()
				check(t, p.Open(next, h.echo, nil))
				echoOn(t, p, next, "a new stream after the reset one")
			},
			want: stays},

		// Stream state violations (§7.5): that stream is reset with code 1.
		{name: "DATA after FIN",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				id := openHeld(t, h, p)
				check(t, p.Send(engine.TypeFin, id, nil))
				check(t, p.Data(id, []byte("after the end")))
				expectOn(t, p, id, engine.TypeRst, engine.CodeProtocol)
			},
			want: stays},
		{name: "second FIN",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				id := openHeld(t, h, p)
				check(t, p.Send(engine.TypeFin, id, nil))
				check(t, p.Send(engine.TypeFin, id, nil))
				expectOn(t, p, id, engine.TypeRst, engine.CodeProtocol)
			},
			want: stays},
		{name: "OPEN_OK from the opener",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				id := openHeld(t, h, p)
				check(t, p.Send(engine.TypeOpenOK, id, nil))
				expectOn(t, p, id, engine.TypeRst, engine.CodeProtocol)
			},
			want: stays},

		// Flow control (§8).
		{name: "DATA beyond the window resets that stream only",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				other := p.NextID()
				check(t, p.Open(other, h.echo, nil))
				echoOn(t, p, other, "before")
				// The violating stream's dial is held, so the listener
				// consumes nothing and grants no credit: the initial
				// window is all the credit there is.
				gated := testkit.Echo(t)
				h.gateTarget(gated)
				id := p.NextID()
				check(t, p.Open(id, gated, nil))
				chunk := make([]byte, engine.DefaultMaxPayload)
				for sent := 0; sent < engine.DefaultWindow; sent += len(chunk) {
					check(t, p.Data(id, chunk))
				}
				check(t, p.Data(id, []byte{1})) // one byte past the window
				expectOn(t, p, id, engine.TypeRst, engine.CodeFlowControl)
				echoOn(t, p, other, "after: the other stream is untouched")
			},
			want: stays},
		{name: "CREDIT past 2^30 is ignored",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				src, want, release := source(t, 1<<20, true)
				id := p.NextID()
				check(t, p.Open(id, src, nil))
				expectOn(t, p, id, engine.TypeOpenOK, 0)
				// Nothing sent yet, so the listener's window for the stream
				// is the whole initial window: with 2^30 more it would pass
				// 2^30 (§8: ignored and logged, the window unchanged).
				check(t, p.Credit(id, engine.MaxWindow))
				if _, err := p.RoundTrip(hostileGuard); err != nil { // the CREDIT was taken
					t.Fatal(err)
				}
				release()
				got, end, err := p.ReadStream(id, engine.DefaultWindow, hostileGuard)
				if err != nil || end != nil || len(got) != engine.DefaultWindow {
					t.Fatalf("read %d bytes of the initial window %d (end %v, %v)", len(got), engine.DefaultWindow, end, err)
				}
				skipped, err := p.RoundTrip(hostileGuard)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range skipped {
					if f.Stream == id && f.Type == engine.TypeData {
						t.Fatalf("the listener sent DATA beyond the window it was granted: the CREDIT past 2^30 was taken")
					}
				}
				h.pair.ALog.Wait(t, hostileGuard, "the CREDIT past 2^30 logged", func(r testkit.Record) bool {
					return r.Level >= slog.LevelWarn && fmt.Sprint(r.Attrs["stream"]) == fmt.Sprint(id)
				})
				// A little more than the rest: a stream whose credit is
				// exactly used up does not read its socket, so it would
				// not see the end to send FIN.
				check(t, p.Credit(id, uint32(len(want)-len(got)+1024)))
				rest, end, err := p.ReadStream(id, len(want), hostileGuard)
				got = append(got, rest...)
				if err != nil || end == nil || end.Type != engine.TypeFin || !bytes.Equal(got, want) {
					t.Fatalf("stream delivered %d bytes (sha %s, want %d, sha %s), end %v, %v", len(got), sum(got), len(want), sum(want), end, err)
				}
			},
			want: stays},
		// §7.1: CREDIT may come any time after the OPEN, before OPEN_OK too.
		{name: "CREDIT before OPEN_OK counts",
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				src, want, _ := source(t, 2<<20, false)
				h.gateTarget(src)
				id := p.NextID()
				check(t, p.Open(id, src, nil))
				check(t, p.Credit(id, 4<<20))
				// The PONG comes after the listener took the CREDIT; only
				// then is the dial let through.
				if _, err := p.RoundTrip(hostileGuard); err != nil {
					t.Fatal(err)
				}
				h.openGate()
				got, end, err := p.ReadStream(id, len(want)+1, hostileGuard)
				if err != nil || end == nil || end.Type != engine.TypeFin || !bytes.Equal(got, want) {
					t.Fatalf("stream delivered %d of %d bytes (sha %s, want %s), end %v, %v: a CREDIT sent before OPEN_OK was lost",
						len(got), len(want), sum(got), sum(want), end, err)
				}
			},
			want: stays},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runHostile(t, tc) })
	}
}

// TestHostileResetReachesClient: a node dials the test peer, which plays
// the far end of the node's -L forward; when the peer resets the stream,
// the node's local client sees a reset (ECONNRESET), not an orderly end.
func TestHostileResetReachesClient(t *testing.T) {
	testkit.CheckLeaks(t)
	l := wirepeer.Listen(t)
	rec := testkit.NewRecorder()
	n := dialingNode(t, l.Addr(), Config{Logger: slog.New(rec), Backoff: time.Hour,
		Forwards: []forward.Forward{hostileFwd("far.example:80")}})
	p, err := l.Accept(hostileGuard, wirepeer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handshake(); err != nil {
		t.Fatal(err)
	}
	client := testkit.Dial(t, n.ForwardAddrs()[0])
	open, _, err := p.Expect(hostileGuard, func(f *wirepeer.Frame) bool { return f.Type == engine.TypeOpen })
	if err != nil {
		t.Fatal(err)
	}
	if o, err := engine.ParseOpen(open.Payload); err != nil || o.Target != "far.example:80" {
		t.Fatalf("OPEN %+v, %v; want the forward's target", o, err)
	}
	id := open.Stream
	check(t, p.Send(engine.TypeOpenOK, id, nil))
	check(t, p.Data(id, []byte("abc")))
	client.SetReadDeadline(time.Now().Add(hostileGuard)) // hang guard
	buf := make([]byte, 3)
	if _, err := client.Read(buf); err != nil || string(buf) != "abc" {
		t.Fatalf("client read %q, %v; want abc", buf, err)
	}
	check(t, p.Rst(id, engine.CodeCancelled, "reset by the far end"))
	_, err = client.Read(buf)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read after the peer's RST: %v; want ECONNRESET (a reset, not an orderly end)", err)
	}
	n.Close() // with the link up: see hostile.closeListener
}
