package engine

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// sessionPair is two Sessions, a dialler and an accepter, on one carrier
// (0) that delivers at once, and what each was told.
type sessionPair struct {
	a, b *Session
	got  map[*Session][]Event
	data map[*Session]map[uint32][]byte
}

func newSessionPair(tb testing.TB, seq bool, policy Policy) *sessionPair {
	tb.Helper()
	checkPool(tb)
	cfg := func(r Role) SessionConfig {
		return SessionConfig{Role: r, MaxStreams: 8, Window: 4096, PeerWindow: 4096, MaxWindow: 1 << 16, MaxData: 1024,
			Policy: policy, Seq: seq, Reorder: 1 << 16, PeerReorder: 1 << 16}
	}
	p := &sessionPair{a: NewSession(cfg(RoleDialer)), b: NewSession(cfg(RoleAccepter)),
		got: map[*Session][]Event{}, data: map[*Session]map[uint32][]byte{}}
	p.a.AddCarrier(0)
	p.b.AddCarrier(0)
	tb.Cleanup(func() { p.a.Close(); p.b.Close() })
	return p
}

// next is the next frame s sends, on its one carrier, whose writer takes
// it at once.
func next(s *Session) *Frame {
	f, c := s.Next()
	if f != nil {
		s.Written(c, f.WireLen())
	}
	return f
}

// pump moves frames both ways until neither side has any to send, keeping
// the events (DATA's bytes copied out and the frame released); it returns
// the first protocol error either side met.
func (p *sessionPair) pump() error {
	for moved := true; moved; {
		moved = false
		for _, d := range [][2]*Session{{p.a, p.b}, {p.b, p.a}} {
			from, to := d[0], d[1]
			for f := next(from); f != nil; f = next(from) {
				moved = true
				if err := to.Receive(0, copyFrame(f)); err != nil {
					f.Release()
					return err
				}
				f.Release()
			}
			if ack := from.Ack(0, false); ack != nil {
				if err := to.Receive(0, ack); err != nil {
					return err
				}
			}
			for _, ev := range to.Events() {
				if ev.Kind == EventData {
					if p.data[to] == nil {
						p.data[to] = map[uint32][]byte{}
					}
					p.data[to][ev.Stream] = append(p.data[to][ev.Stream], ev.Frame.Bytes()...)
					ev.Frame.Release()
					ev.Frame = nil
				}
				p.got[to] = append(p.got[to], ev)
			}
		}
	}
	return nil
}

// copyFrame is f as the peer reads it: a frame of its own.
func copyFrame(f *Frame) *Frame {
	return &Frame{Type: f.Type, Flags: f.Flags, Stream: f.Stream, Seq: f.Seq, After: f.After, Payload: copyPayload(f)}
}

func copyPayload(f *Frame) *Buffer {
	if f.Len() == 0 {
		return nil
	}
	b := GetBuffer(f.Len())
	copy(b.B, f.Bytes())
	return b
}

// kinds is the kinds of the events s was told, for stream id.
// kinds is what s was told of stream id, grants (EventWritable) aside
// unless all is set.
func (p *sessionPair) kinds(s *Session, id uint32, all ...bool) []EventKind {
	var out []EventKind
	for _, ev := range p.got[s] {
		if ev.Stream == id && (ev.Kind != EventWritable || len(all) > 0) {
			out = append(out, ev.Kind)
		}
	}
	return out
}

// TestSessionStream: a stream opened, accepted, carrying more than a
// window each way (Write takes what the credit allows; Consumed earns
// more), half-closed from each side in turn, on a plain and a CapSeq link.
func TestSessionStream(t *testing.T) {
	for _, seq := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "seq"}[seq], func(t *testing.T) {
			p := newSessionPair(t, seq, allowOnly("echo:7"))
			id, err := p.a.Open(TargetDial, "echo:7")
			if err != nil {
				t.Fatal(err)
			}
			payload := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB: four windows
			n, err := p.a.Write(id, payload)
			if err != nil || n != 4096 {
				t.Fatalf("Write before any credit: %d, %v; want the window, 4096", n, err)
			}
			if err := p.pump(); err != nil {
				t.Fatal(err)
			}
			if len(p.got[p.b]) == 0 || p.got[p.b][0].Kind != EventOpened || p.got[p.b][0].Target != "echo:7" {
				t.Fatalf("accepter told %+v, want EventOpened for echo:7 first", p.got[p.b])
			}
			if err := p.b.Accept(id); err != nil {
				t.Fatal(err)
			}
			for sent := n; sent < len(payload); {
				p.b.Consumed(id, 1<<20, time.Unix(0, 0), 0) // the reader takes all it was given
				if err := p.pump(); err != nil {
					t.Fatal(err)
				}
				k, err := p.a.Write(id, payload[sent:])
				if err != nil || k == 0 {
					t.Fatalf("Write after credit: %d, %v", k, err)
				}
				sent += k
				if err := p.pump(); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.a.CloseWrite(id); err != nil {
				t.Fatal(err)
			}
			if err := p.pump(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.data[p.b][id], payload) {
				t.Fatalf("accepter got %d bytes, not the %d sent", len(p.data[p.b][id]), len(payload))
			}
			if in, _ := p.b.Stream(id); in.State != StateHalfClosedRemote {
				t.Fatalf("accepter's stream is %v after the FIN, want half-closed(remote)", in.State)
			}
			if _, err := p.b.Write(id, []byte("answer")); err != nil {
				t.Fatal(err)
			}
			if err := p.b.CloseWrite(id); err != nil {
				t.Fatal(err)
			}
			if err := p.pump(); err != nil {
				t.Fatal(err)
			}
			if string(p.data[p.a][id]) != "answer" {
				t.Fatalf("opener got %q", p.data[p.a][id])
			}
			ia, _ := p.a.Stream(id)
			ib, _ := p.b.Stream(id)
			if ia.State != StateClosed || ib.State != StateClosed {
				t.Fatalf("states %v and %v, want both closed", ia.State, ib.State)
			}
			if k := p.kinds(p.a, id, true); !hasKinds(k, EventAccepted, EventWritable, EventData, EventFin) {
				t.Fatalf("opener told %v", k)
			}
			if !p.a.Forget(id) || !p.b.Forget(id) {
				t.Fatal("Forget of an ended stream refused")
			}
			if _, ok := p.a.Stream(id); ok {
				t.Fatal("a forgotten stream is still there")
			}
		})
	}
}

func hasKinds(got []EventKind, want ...EventKind) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestSessionRefusals: a target the policy refuses, an open the local side
// refuses after trying, a reset, and GOAWAY both ways.
func TestSessionRefusals(t *testing.T) {
	p := newSessionPair(t, true, allowOnly("ok:1"))
	bad, _ := p.a.Open(TargetDial, "nope:1")
	tried, _ := p.a.Open(TargetDial, "ok:1")
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	if k := p.kinds(p.b, bad); len(k) != 1 || k[0] != EventRefused {
		t.Fatalf("accepter told %v for a refused target, want EventRefused", k)
	}
	if err := p.b.Refuse(tried, CodeDialFailed, "connection refused"); err != nil {
		t.Fatal(err)
	}
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   uint32
		says string
	}{{bad, "not allowed"}, {tried, "connection refused"}} {
		in, _ := p.a.Stream(c.id)
		var reason Reason
		for _, ev := range p.got[p.a] {
			if ev.Stream == c.id && ev.Kind == EventReset {
				reason = ev.Reason
			}
		}
		if !in.Reset || !strings.Contains(reason.Text, c.says) {
			t.Fatalf("stream %d: %+v, reason %v; want reset saying %q", c.id, in, reason, c.says)
		}
	}
	if _, err := p.a.Write(bad, []byte("x")); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Write on a refused stream: %v, want ErrStreamClosed", err)
	}
	// A reset: the peer is told with the reason, and drops what follows.
	id, _ := p.a.Open(TargetDial, "ok:1")
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	if err := p.a.Reset(id, CodeCancelled, "client gone"); err != nil {
		t.Fatal(err)
	}
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	if in, _ := p.b.Stream(id); !in.Reset || in.State != StateReset {
		t.Fatalf("accepter's stream after RST: %+v", in)
	}
	// GOAWAY: this side opens no more; the peer's new OPENs are refused
	// as a shutdown.
	p.b.GoAway()
	if _, err := p.b.Open(TargetDial, "ok:1"); !errors.Is(err, ErrGoingAway) {
		t.Fatalf("Open after GoAway: %v, want ErrGoingAway", err)
	}
	late, _ := p.a.Open(TargetDial, "ok:1")
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	if k := p.kinds(p.a, late); len(k) != 1 || k[0] != EventReset {
		t.Fatalf("an OPEN after the peer's GOAWAY: %v, want a reset", k)
	}
	if err := p.b.Receive(0, NewReason(TypeGoAway, 0, CodeShutdown, "bye")); err != nil {
		t.Fatal(err)
	}
	if ev := p.b.Events(); len(ev) != 1 || ev[0].Kind != EventGoAway || ev[0].Reason.Text != "bye" {
		t.Fatalf("GOAWAY received: %+v", ev)
	}
}

// TestSessionProtocolErrors: what a peer breaks ends the Session with an
// error matching ErrProtocol, kept for every later call.
func TestSessionProtocolErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		seq    bool
		frames func(id uint32) []*Frame
		want   error
	}{
		{"DATA on stream 0", false, func(uint32) []*Frame { return []*Frame{newFrame(TypeData, 0, []byte("x"))} }, ErrBadStreamID},
		{"ACK without CapSeq", false, func(uint32) []*Frame { return []*Frame{NewAck(Ack{Received: 1})} }, ErrStreamState},
		{"ACK of what was never sent", true, func(uint32) []*Frame { return []*Frame{NewAck(Ack{Received: 99})} }, ErrMalformed},
		{"OPEN of our own parity", false, func(uint32) []*Frame { return []*Frame{NewOpen(2, TargetDial, "x:1", nil)} }, ErrBadStreamID},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newSessionPair(t, c.seq, allowOnly("x:1"))
			id, _ := p.b.Open(TargetDial, "x:1") // b opens, so a is the receiving side below
			if err := p.pump(); err != nil {
				t.Fatal(err)
			}
			var err error
			for _, f := range c.frames(id) {
				if c.seq && f.Type.Sequenced() {
					f.Flags |= FlagSeq
					f.Seq = 2 // after the OPEN
				}
				if err = p.a.Receive(0, f); err != nil {
					break
				}
			}
			if !errors.Is(err, c.want) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("Receive: %v, want %v (a protocol error)", err, c.want)
			}
			if again := p.a.Receive(0, newFrame(TypeFin, id, nil)); again != err || p.a.Err() != err {
				t.Fatalf("after the error: %v and Err %v, want the first error kept", again, p.a.Err())
			}
		})
	}
}

// TestSessionStreamBreaches: a frame that breaks one stream's rules (its
// state does not allow it, or DATA beyond the window) resets that stream,
// telling the peer which rule, and the link and its other streams go on.
func TestSessionStreamBreaches(t *testing.T) {
	for _, c := range []struct {
		name   string
		frames func(id uint32) []*Frame
		code   Code
		cause  string
	}{
		{"DATA beyond the window", func(id uint32) []*Frame {
			return []*Frame{newFrame(TypeData, id, make([]byte, 4097))}
		}, CodeFlowControl, "flow-control"},
		{"FIN twice", func(id uint32) []*Frame {
			return []*Frame{newFrame(TypeFin, id, nil), newFrame(TypeFin, id, nil)}
		}, CodeProtocol, "protocol"},
		{"OPEN_OK to the accepter", func(id uint32) []*Frame { return []*Frame{newFrame(TypeOpenOK, id, nil)} }, CodeProtocol, "protocol"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newSessionPair(t, false, allowOnly("x:1"))
			id, _ := p.b.Open(TargetDial, "x:1") // b opens, so a is the receiving side below
			other, _ := p.b.Open(TargetDial, "x:1")
			if err := p.pump(); err != nil {
				t.Fatal(err)
			}
			if err := p.a.Accept(other); err != nil {
				t.Fatal(err)
			}
			for _, f := range c.frames(id) {
				if err := p.a.Receive(0, f); err != nil {
					t.Fatalf("Receive: %v; a stream's breach must not end the link", err)
				}
			}
			var told *Event
			for _, ev := range p.a.Events() {
				if ev.Stream == id && ev.Kind == EventReset {
					told = &ev
				}
			}
			if told == nil || told.Cause != c.cause || told.Reason.Code != c.code {
				t.Fatalf("the local side was told %+v, want a reset with cause %q and code %v", told, c.cause, c.code)
			}
			if in, _ := p.a.Stream(id); in.State != StateReset {
				t.Fatalf("stream after the breach: %+v, want reset", in)
			}
			var r *Reason
			for f := next(p.a); f != nil; f = next(p.a) {
				if f.Type == TypeRst && f.Stream == id {
					got, _ := ParseReason(f.Bytes())
					r = &got
				}
				f.Release()
			}
			if r == nil || r.Code != c.code {
				t.Fatalf("the peer was sent RST %v, want one with %v", r, c.code)
			}
			if n, err := p.a.Write(other, []byte("still here")); n != 10 || err != nil || p.a.Err() != nil {
				t.Fatalf("the other stream after the breach: Write %d, %v; link error %v", n, err, p.a.Err())
			}
		})
	}
}

// FuzzSession: any frames a peer sends get a verdict, never a panic, and
// every buffer comes back once the Session is closed and its events'
// frames are released.
func FuzzSession(f *testing.F) {
	f.Add([]byte{byte(TypeOpen), 1, byte(TypeData), 1, byte(TypeFin), 1, byte(TypeRst), 1}, true)
	f.Add([]byte{byte(TypeCredit), 1, byte(TypeAck), 0, byte(TypeGoAway), 0}, false)
	f.Fuzz(func(t *testing.T, script []byte, seq bool) {
		start := PoolOutstanding()
		s := NewSession(SessionConfig{Role: RoleAccepter, MaxStreams: 4, Window: 1024, PeerWindow: 1024, MaxWindow: 4096,
			MaxData: 512, Policy: allowOnly("x:1"), Seq: seq, Reorder: 4096, PeerReorder: 4096})
		s.AddCarrier(0)
		var n uint64
		for i := 0; i+1 < len(script) && s.Err() == nil; i += 2 {
			typ, stream := Type(script[i]%0x12), uint32(script[i+1]%6)
			var fr *Frame
			switch typ {
			case TypeOpen:
				fr = NewOpen(stream, TargetDial, "x:1", script[i:min(len(script), i+int(stream)*40)])
			case TypeRst, TypeOpenFail, TypeGoAway:
				fr = NewReason(typ, stream, CodeCancelled, "fuzz")
			case TypeCredit:
				fr = NewCredit(stream, uint32(script[i+1])<<4)
			case TypeAck:
				fr = NewAck(Ack{Received: uint64(script[i+1] % 4)})
			default:
				fr = newFrame(typ, stream, script[i:min(len(script), i+int(stream)*100)])
			}
			if seq && typ.Sequenced() {
				n++
				fr.Flags, fr.Seq = FlagSeq, n
			}
			if err := s.Receive(0, fr); err != nil && !errors.Is(err, ErrProtocol) {
				t.Fatalf("%v: an error that is not a protocol error: %v", typ, err)
			}
			for _, ev := range s.Events() {
				if ev.Kind == EventOpened {
					_ = s.Accept(ev.Stream)
				}
				if ev.Frame != nil {
					s.Consumed(ev.Stream, ev.Frame.Len(), time.Unix(0, 0), 0)
					ev.Frame.Release()
				}
			}
			for f := next(s); f != nil; f = next(s) {
				f.Release()
			}
		}
		s.Close()
		if got := PoolOutstanding(); got != start {
			t.Fatalf("pool: %d buffers outstanding, %d at the start", got, start)
		}
	})
}
