package actors

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// TestHostileFrames: broken headers and malformed frames after a good
// handshake, on plain and on CapSeq links (PROTOCOL.md §2, §3, §4, §10).
func TestHostileFrames(t *testing.T) {
	hdr := func(typ engine.Type, stream, length uint32) func(*testing.T, *hostile, *wirepeer.Peer) {
		return func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
			check(t, p.Write(wirepeer.Header(p.Version(), typ, stream, length)))
		}
	}
	withFlags := func(flags uint16, typ engine.Type, payload []byte) []byte {
		b := wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: typ}, 0, payload)
		binary.BigEndian.PutUint16(b[2:], flags)
		return b
	}
	seqPeer := wirepeer.Options{Seq: true}
	smallBudget := func(_ *hostile, c *Config) { c.LinkBudget = 4 << 20 } // a reorder limit of 1 MiB
	cases := []hostileCase{
		// Headers.
		{name: "length past the max payload", attack: hdr(engine.TypeData, 1, engine.DefaultMaxPayload+1), want: closes, code: engine.CodeProtocol},
		{name: "length 2^32-1", attack: hdr(engine.TypeData, 1, 0xFFFFFFFF), want: closes, code: engine.CodeProtocol},
		{name: "length at the max payload, for no stream", attack: sendFrame(engine.TypeData, 99, make([]byte, engine.DefaultMaxPayload)), want: stays},
		{name: "type 0x00", attack: hdr(0x00, 0, 0), want: closes, code: engine.CodeProtocol},
		{name: "type 0x11", attack: hdr(0x11, 0, 0), want: closes, code: engine.CodeProtocol},
		{name: "UNBIND of 3 bytes", attack: sendFrame(engine.TypeUnbind, 0, []byte{1, 2, 3}), want: closes, code: engine.CodeProtocol},
		{name: "type 0xFF", attack: hdr(0xFF, 1, 0), want: closes, code: engine.CodeProtocol},
		{name: "wrong version byte", attack: writeRaw(wirepeer.AppendFrame(nil, engine.Header{Version: 2, Type: engine.TypePing}, 0, wirepeer.PingPayload(1))),
			want: closes, code: engine.CodeProtocol},
		{name: "HELLO again", attack: writeRaw(helloBytes(goodHello)), want: closes, code: engine.CodeProtocol},
		{name: "AUTH after the handshake", attack: sendFrame(engine.TypeAuth, 0, make([]byte, engine.AuthLen)), want: closes, code: engine.CodeProtocol},
		{name: "FlagSeq on a link without CapSeq", attack: writeRaw(withFlags(engine.FlagSeq, engine.TypePing, wirepeer.PingPayload(1))),
			want: closes, code: engine.CodeProtocol},
		{name: "reserved flag bits are ignored",
			attack: func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
				check(t, p.Write(withFlags(0x8000|0x0100, engine.TypePing, wirepeer.PingPayload(0xF1A9))))
				if _, _, err := p.Expect(hostileGuard, func(f *wirepeer.Frame) bool {
					return f.Type == engine.TypePong && string(f.Payload) == string(wirepeer.PingPayload(0xF1A9))
				}); err != nil {
					t.Fatalf("no PONG for a PING with reserved flags: %v", err)
				}
			},
			want: stays},
		{name: "garbage after the handshake", attack: writeRaw([]byte("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4 and more")),
			want: closes, code: engine.CodeProtocol},
		// §10 says only "link closed (nothing can be sent)" of a frame cut
		// short by the end of the carrier; a half-closed TCP carrier can
		// still carry a GOAWAY, so either is accepted.
		{name: "frame cut short by the end",
			attack: func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
				check(t, p.Write(append(wirepeer.Header(p.Version(), engine.TypeData, 1, 100), "short"...)))
				check(t, p.CloseWrite())
			},
			want: closesAnyhow},

		// Link frames.
		{name: "PING of 7 bytes", attack: sendFrame(engine.TypePing, 0, make([]byte, 7)), want: closes, code: engine.CodeProtocol},
		{name: "PING of 9 bytes", attack: sendFrame(engine.TypePing, 0, make([]byte, 9)), want: closes, code: engine.CodeProtocol},
		{name: "PONG nobody asked for", attack: sendFrame(engine.TypePong, 0, wirepeer.PingPayload(12345)), want: stays},
		{name: "PONG of 3 bytes", attack: sendFrame(engine.TypePong, 0, []byte{1, 2, 3}), want: closes, code: engine.CodeProtocol},
		{name: "FIN with a payload", attack: sendFrame(engine.TypeFin, 7, []byte("dropped?")), want: closes, code: engine.CodeProtocol},
		{name: "OPEN_OK with a payload", attack: sendFrame(engine.TypeOpenOK, 7, []byte("x")), want: closes, code: engine.CodeProtocol},
		{name: "ACK on a link without CapSeq", attack: sendFrame(engine.TypeAck, 0, engine.AppendAck(nil, engine.Ack{})), want: closes, code: engine.CodeProtocol},
		{name: "GOAWAY of 1 byte", attack: sendFrame(engine.TypeGoAway, 0, []byte{0}), want: closes, code: engine.CodeProtocol},
		{name: "GOAWAY text not UTF-8", attack: sendFrame(engine.TypeGoAway, 0, []byte{0, 0, 0xff, 0xfe}), want: closes, code: engine.CodeProtocol},
		{name: "BIND malformed", attack: sendFrame(engine.TypeBind, 0, []byte{0, 0, 0, 1, 0}), want: closes, code: engine.CodeProtocol},
		{name: "BIND_REPLY malformed", attack: sendFrame(engine.TypeBindOK, 0, []byte{0, 0, 0, 1}), want: closes, code: engine.CodeProtocol},
		{name: "BIND_REPLY for no BIND", attack: sendFrame(engine.TypeBindOK, 0, engine.AppendBindReply(nil, engine.BindReply{ID: 77})), want: stays},
		{name: "BIND of a non-loopback address",
			attack: func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
				check(t, p.Send(engine.TypeBind, 0, engine.AppendBind(nil, engine.Bind{ID: 1, Addr: "192.0.2.1:80"})))
				f, _, err := p.Expect(hostileGuard, func(f *wirepeer.Frame) bool { return f.Type == engine.TypeBindOK })
				if err != nil {
					t.Fatal(err)
				}
				if r, err := engine.ParseBindReply(f.Payload); err != nil || r.ID != 1 || r.Code != engine.CodeRefused {
					t.Fatalf("BIND_REPLY %+v, %v; want id 1 code %d (%v)", r, err, engine.CodeRefused, engine.CodeRefused)
				}
			},
			want: stays},

		// Stream frames that name the link.
		{name: "OPEN on stream 0", attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) { check(t, p.Open(0, h.echo, nil)) },
			want: closes, code: engine.CodeProtocol},
		{name: "DATA on stream 0", attack: sendFrame(engine.TypeData, 0, []byte("x")), want: closes, code: engine.CodeProtocol},
		{name: "FIN on stream 0", attack: sendFrame(engine.TypeFin, 0, nil), want: closes, code: engine.CodeProtocol},
		{name: "RST on stream 0", attack: sendFrame(engine.TypeRst, 0, wirepeer.ReasonPayload(engine.CodeCancelled, "")), want: closes, code: engine.CodeProtocol},
		{name: "OPEN_OK on stream 0", attack: sendFrame(engine.TypeOpenOK, 0, nil), want: closes, code: engine.CodeProtocol},
		{name: "OPEN_FAIL on stream 0", attack: sendFrame(engine.TypeOpenFail, 0, wirepeer.ReasonPayload(engine.CodeRefused, "")), want: closes, code: engine.CodeProtocol},
		{name: "CREDIT on stream 0 is dropped", attack: sendFrame(engine.TypeCredit, 0, wirepeer.CreditPayload(1000)), want: stays},

		// Malformed stream payloads.
		{name: "OPEN with an empty target", attack: sendFrame(engine.TypeOpen, 1, []byte{0, 0, 0}), want: closes, code: engine.CodeProtocol},
		{name: "OPEN target longer than the payload", attack: sendFrame(engine.TypeOpen, 1, []byte{0, 0, 40, 'a'}), want: closes, code: engine.CodeProtocol},
		{name: "OPEN target of 1025 bytes", attack: sendFrame(engine.TypeOpen, 1, wirepeer.OpenPayload(engine.TargetDial, string(make([]byte, 1025)), nil)),
			want: closes, code: engine.CodeProtocol},
		{name: "OPEN target not UTF-8", attack: sendFrame(engine.TypeOpen, 1, wirepeer.OpenPayload(engine.TargetDial, "\xff\xfe:1", nil)),
			want: closes, code: engine.CodeProtocol},
		{name: "RST reason of 1 byte", attack: sendFrame(engine.TypeRst, 5, []byte{1}), want: closes, code: engine.CodeProtocol},
		{name: "OPEN_FAIL reason text past 1024 bytes", attack: sendFrame(engine.TypeOpenFail, 5, append([]byte{0, 2}, make([]byte, 1025)...)),
			want: closes, code: engine.CodeProtocol},
		{name: "CREDIT of 0", attack: sendFrame(engine.TypeCredit, 1, wirepeer.CreditPayload(0)), want: closes, code: engine.CodeProtocol},
		{name: "CREDIT of 2^30+1", attack: sendFrame(engine.TypeCredit, 1, wirepeer.CreditPayload(engine.MaxWindow+1)), want: closes, code: engine.CodeProtocol},
		{name: "CREDIT of 2^32-1", attack: sendFrame(engine.TypeCredit, 1, wirepeer.CreditPayload(0xFFFFFFFF)), want: closes, code: engine.CodeProtocol},
		{name: "CREDIT of 3 bytes", attack: sendFrame(engine.TypeCredit, 1, []byte{0, 0, 1}), want: closes, code: engine.CodeProtocol},

		// CapSeq links (§15).
		{name: "CapSeq: sequence number 0", peer: seqPeer,
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				b := wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: engine.TypeOpen, Stream: 1, Flags: engine.FlagSeq}, 0,
					wirepeer.OpenPayload(engine.TargetDial, h.echo, nil))
				// FlagSeq set, then a sequence number of 0 before the payload.
				b = append(b[:engine.HeaderLen], append(make([]byte, engine.SeqLen), b[engine.HeaderLen:]...)...)
				check(t, p.Write(b))
			},
			want: closes, code: engine.CodeProtocol},
		{name: "CapSeq: unnumbered OPEN", peer: seqPeer,
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				check(t, p.Write(wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: engine.TypeOpen, Stream: 1}, 0,
					wirepeer.OpenPayload(engine.TargetDial, h.echo, nil))))
			},
			want: closes, code: engine.CodeProtocol},
		{name: "CapSeq: numbered PING", peer: seqPeer,
			attack: writeRaw(wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: engine.TypePing}, 1, wirepeer.PingPayload(1))),
			want:   closes, code: engine.CodeProtocol},
		{name: "CapSeq: ACK of a frame never sent", peer: seqPeer,
			attack: sendFrame(engine.TypeAck, 0, engine.AppendAck(nil, engine.Ack{Received: 1 << 40})),
			want:   closes, code: engine.CodeProtocol},
		{name: "CapSeq: a replayed frame is dropped", peer: seqPeer,
			attack: func(t *testing.T, h *hostile, p *wirepeer.Peer) {
				id := p.NextID()
				open := p.Append(nil, engine.TypeOpen, id, wirepeer.OpenPayload(engine.TargetDial, h.echo, nil))
				check(t, p.Write(open))
				check(t, p.Write(open)) // the same number again: a copy, not a second OPEN of the id
				expectOn(t, p, id, engine.TypeOpenOK, 0)
				echoOn(t, p, id, "once")
			},
			want: stays},
		{name: "CapSeq: frames past the reorder limit", peer: seqPeer, node: smallBudget,
			attack: func(t *testing.T, _ *hostile, p *wirepeer.Peer) {
				var b []byte
				for i := range 20 { // 20 × 64 KiB held out of order > 1 MiB
					b = wirepeer.AppendFrame(b, engine.Header{Version: 1, Type: engine.TypeData, Stream: 1}, 1000+uint64(i), make([]byte, 64<<10))
				}
				// The listener may close the link before the last of it
				// is written: that is the outcome checked, not a failure.
				if err := p.Write(b); err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
					t.Fatal(err)
				}
			},
			want: closes, code: engine.CodeProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runHostile(t, tc) })
	}
}
