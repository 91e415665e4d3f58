package engine

import (
	"errors"
	"testing"
)

func TestClassifyInbound(t *testing.T) {
	cases := []struct {
		name string
		f    *Frame
		seq  bool
		want Inbound
		err  error // nil: no error
	}{
		{"open", NewOpen(1, TargetDial, "127.0.0.1:80", nil), false, Inbound{Kind: InboundOpen}, nil},
		{"data", newFrame(TypeData, 3, []byte("abc")), false, Inbound{Kind: InboundStream}, nil},
		{"fin", newFrame(TypeFin, 3, nil), false, Inbound{Kind: InboundStream}, nil},
		{"rst", NewReason(TypeRst, 3, CodeCancelled, "bye"), false, Inbound{Kind: InboundStream}, nil},
		{"open fail", NewReason(TypeOpenFail, 3, CodeRefused, "no"), false, Inbound{Kind: InboundStream}, nil},
		{"data on stream 0", newFrame(TypeData, 0, []byte("x")), false, Inbound{}, ErrBadStreamID},
		{"rst without a reason", newFrame(TypeRst, 3, []byte{1}), false, Inbound{}, ErrMalformed},
		{"credit", NewCredit(5, 4096), false, Inbound{Kind: InboundCredit, Credit: 4096}, nil},
		{"credit of 0", newFrame(TypeCredit, 5, []byte{0, 0, 0, 0}), false, Inbound{}, ErrProtocol},
		{"ping", NewPing(TypePing, 42), false, Inbound{Kind: InboundPing, Ping: 42}, nil},
		{"ping of 3 bytes", newFrame(TypePing, 0, []byte{1, 2, 3}), false, Inbound{}, ErrMalformed},
		{"pong", NewPing(TypePong, 7), false, Inbound{Kind: InboundPong, Ping: 7}, nil},
		{"pong of 1 byte", newFrame(TypePong, 0, []byte{1}), false, Inbound{}, ErrMalformed},
		{"fin with a payload", newFrame(TypeFin, 3, []byte("x")), false, Inbound{}, ErrMalformed},
		{"open ok with a payload", newFrame(TypeOpenOK, 3, []byte("x")), false, Inbound{}, ErrMalformed},
		{"ack", NewAck(Ack{Received: 9, CarrierBytes: 100}), true, Inbound{Kind: InboundAck, Ack: Ack{Received: 9, CarrierBytes: 100}}, nil},
		{"ack without CapSeq", NewAck(Ack{Received: 9}), false, Inbound{}, ErrStreamState},
		{"bind", NewBind(Bind{ID: 2, Addr: "127.0.0.1:8080"}), false, Inbound{Kind: InboundBind, Bind: Bind{ID: 2, Addr: "127.0.0.1:8080"}}, nil},
		{"bind without an address", newFrame(TypeBind, 0, []byte{0, 0, 0, 2, 0, 0, 0}), false, Inbound{}, ErrMalformed},
		{"unbind", NewUnbind(2), false, Inbound{Kind: InboundUnbind, Unbind: 2}, nil},
		{"bind reply", NewBindReply(BindReply{ID: 2, Code: CodeRefused, Text: "taken"}), false, Inbound{Kind: InboundBindReply, BindReply: BindReply{ID: 2, Code: CodeRefused, Text: "taken"}}, nil},
		{"goaway", NewReason(TypeGoAway, 0, CodeShutdown, "restart"), false, Inbound{Kind: InboundGoAway, Reason: Reason{Code: CodeShutdown, Text: "restart"}}, nil},
		{"auth after the handshake", newFrame(TypeAuth, 0, []byte("x")), false, Inbound{}, ErrStreamState},
		{"hello after the handshake", newFrame(TypeHello, 0, []byte("x")), true, Inbound{}, ErrStreamState},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer c.f.Release()
			got, err := ClassifyInbound(c.f, c.seq)
			if c.err != nil {
				if !errors.Is(err, c.err) || !errors.Is(err, ErrProtocol) {
					t.Fatalf("error %v, want %v (a protocol error)", err, c.err)
				}
				if got.KeepsFrame() {
					t.Fatal("a frame refused is kept: its buffer would leak")
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// FuzzInbound: any frame a peer can send gets a verdict or a protocol
// error, never a panic, and a verdict that keeps the frame is only ever
// for an OPEN or a stream's frame.
func FuzzInbound(f *testing.F) {
	f.Add(uint8(TypeData), uint32(1), []byte("hello"), true)
	f.Add(uint8(TypeBind), uint32(0), AppendBind(nil, Bind{ID: 1, Addr: "x:1"}), false)
	f.Add(uint8(TypeAck), uint32(0), []byte{0, 0, 0, 0, 0, 0, 0, 1}, true)
	f.Add(uint8(TypeGoAway), uint32(0), AppendReason(nil, CodeShutdown, "x"), false)
	f.Fuzz(func(t *testing.T, typ uint8, stream uint32, payload []byte, seq bool) {
		fr := newFrame(Type(typ), stream, payload)
		defer fr.Release()
		in, err := ClassifyInbound(fr, seq)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("%v: an error that is not a protocol error: %v", Type(typ), err)
			}
			return
		}
		if in.KeepsFrame() && Type(typ) != TypeOpen && (stream == 0 || typ < uint8(TypeOpenOK) || typ > uint8(TypeRst)) {
			t.Fatalf("%v on stream %d kept as %v", Type(typ), stream, in.Kind)
		}
	})
}
