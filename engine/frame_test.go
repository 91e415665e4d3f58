package engine

import (
	"bytes"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		wire []byte
	}{
		{
			name: "data",
			h:    Header{Version: 1, Type: TypeData, Flags: 0, Stream: 1, Length: 5},
			wire: []byte{1, 0x05, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5},
		},
		{
			name: "all fields wide",
			h:    Header{Version: 1, Type: TypeGoAway, Flags: 0xBEEF, Stream: 0xDEADBEEF, Length: 0x00010000},
			wire: []byte{1, 0x0B, 0xBE, 0xEF, 0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0x00, 0x00},
		},
		{
			name: "empty link frame",
			h:    Header{Version: 1, Type: TypePing, Stream: 0, Length: 0},
			wire: []byte{1, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b [HeaderLen]byte
			PutHeader(b[:], tc.h)
			if !bytes.Equal(b[:], tc.wire) {
				t.Fatalf("PutHeader = % x, want % x", b[:], tc.wire)
			}
			got, err := ParseHeader(b[:], tc.h.Version, DefaultMaxPayload)
			wantErr(t, "ParseHeader", err, nil)
			if got != tc.h {
				t.Fatalf("ParseHeader = %+v, want %+v", got, tc.h)
			}
		})
	}
}

func TestParseHeaderEveryType(t *testing.T) {
	for ty := Type(0); ty < 0x20; ty++ {
		var b [HeaderLen]byte
		PutHeader(b[:], Header{Version: Version, Type: ty, Stream: 3, Length: 1})
		_, err := ParseHeader(b[:], Version, DefaultMaxPayload)
		switch {
		case ty == TypeHello:
			wantErr(t, ty.String(), err, ErrStreamState)
		case ty.Valid():
			wantErr(t, ty.String(), err, nil)
		default:
			wantErr(t, ty.String(), err, ErrUnknownType)
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	hdr := func(h Header) []byte {
		b := make([]byte, HeaderLen)
		PutHeader(b, h)
		return b
	}
	tests := []struct {
		name    string
		b       []byte
		version uint8 // 0: handshake
		max     uint32
		want    error
	}{
		{"ok", hdr(Header{Version: 1, Type: TypeData, Stream: 1, Length: 10}), 1, 100, nil},
		{"ok at limit", hdr(Header{Version: 1, Type: TypeData, Stream: 1, Length: 100}), 1, 100, nil},
		{"too large", hdr(Header{Version: 1, Type: TypeData, Stream: 1, Length: 101}), 1, 100, ErrFrameTooLarge},
		{"too large huge", hdr(Header{Version: 1, Type: TypeData, Stream: 1, Length: 0xFFFFFFFF}), 1, DefaultMaxPayload, ErrFrameTooLarge},
		{"bad version", hdr(Header{Version: 2, Type: TypeData, Stream: 1}), 1, 100, ErrVersion},
		{"version 0 after handshake", hdr(Header{Version: 0, Type: TypeData, Stream: 1}), 1, 100, ErrVersion},
		{"unknown type 0", hdr(Header{Version: 1, Type: 0, Stream: 1}), 1, 100, ErrUnknownType},
		{"unknown type 0x11", hdr(Header{Version: 1, Type: 0x11, Stream: 1}), 1, 100, ErrUnknownType},
		{"unknown type 0xFF", hdr(Header{Version: 1, Type: 0xFF, Stream: 1}), 1, 100, ErrUnknownType},
		{"HELLO after handshake", hdr(Header{Version: 1, Type: TypeHello, Length: 20}), 1, 100, ErrStreamState},
		{"handshake HELLO", hdr(Header{Version: 1, Type: TypeHello, Length: 20}), 0, 100, nil},
		{"handshake HELLO any version", hdr(Header{Version: 200, Type: TypeHello, Length: 20}), 0, 100, nil},
		{"handshake HELLO at limit", hdr(Header{Version: 1, Type: TypeHello, Length: MaxHelloPayload}), 0, 100, nil},
		{"handshake HELLO too large", hdr(Header{Version: 1, Type: TypeHello, Length: MaxHelloPayload + 1}), 0, 1 << 20, ErrFrameTooLarge},
		{"handshake not HELLO", hdr(Header{Version: 1, Type: TypeData, Stream: 1, Length: 1}), 0, 100, ErrBadMagic},
		{"handshake unknown type", hdr(Header{Version: 1, Type: 0x7F}), 0, 100, ErrBadMagic},
		{"handshake GOAWAY", hdr(Header{Version: 1, Type: TypeGoAway, Length: 2}), 0, 100, ErrBadMagic},
		{"truncated empty", nil, 1, 100, ErrTruncated},
		{"truncated 11", make([]byte, HeaderLen-1), 1, 100, ErrTruncated},
		{"truncated handshake", []byte{1, 1, 0}, 0, 100, ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHeader(tc.b, tc.version, tc.max)
			wantErr(t, "ParseHeader", err, tc.want)
			if tc.want != nil {
				// Every header error is a protocol error.
				wantErr(t, "ParseHeader", err, ErrProtocol)
			}
		})
	}
}

func TestTypeProperties(t *testing.T) {
	tests := []struct {
		t       Type
		name    string
		valid   bool
		control bool
	}{
		{0, "TYPE(0x00)", false, true},
		{TypeHello, "HELLO", true, true},
		{TypeOpen, "OPEN", true, true},
		{TypeOpenOK, "OPEN_OK", true, true},
		{TypeOpenFail, "OPEN_FAIL", true, true},
		{TypeData, "DATA", true, false},
		{TypeCredit, "CREDIT", true, true},
		{TypeFin, "FIN", true, false},
		{TypeRst, "RST", true, true},
		{TypePing, "PING", true, true},
		{TypePong, "PONG", true, true},
		{TypeGoAway, "GOAWAY", true, true},
		{TypeAuth, "AUTH", true, true},
		{TypeBind, "BIND", true, true},
		{TypeAck, "ACK", true, true},
		{TypeUnbind, "UNBIND", true, true},
		{0x11, "TYPE(0x11)", false, true},
		{0xFF, "TYPE(0xff)", false, true},
	}
	for _, tc := range tests {
		if got := tc.t.String(); got != tc.name {
			t.Errorf("Type(%d).String() = %q, want %q", uint8(tc.t), got, tc.name)
		}
		if got := tc.t.Valid(); got != tc.valid {
			t.Errorf("%v.Valid() = %v, want %v", tc.t, got, tc.valid)
		}
		if got := tc.t.Control(); got != tc.control {
			t.Errorf("%v.Control() = %v, want %v", tc.t, got, tc.control)
		}
	}
}

func TestFrameMethods(t *testing.T) {
	checkPool(t)
	empty := NewEmpty(TypeFin, 7)
	if empty.Len() != 0 || empty.Bytes() != nil || empty.WireLen() != HeaderLen {
		t.Fatalf("empty frame: len %d bytes %v wire %d", empty.Len(), empty.Bytes(), empty.WireLen())
	}
	empty.Release() // no payload: a no-op

	f := dataFrame(t, TypeData, 9, "hello")
	if f.Len() != 5 || string(f.Bytes()) != "hello" || f.WireLen() != HeaderLen+5 {
		t.Fatalf("data frame: len %d bytes %q wire %d", f.Len(), f.Bytes(), f.WireLen())
	}
	if got, want := f.String(), "DATA stream=9 len=5"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	var b [HeaderLen]byte
	f.PutHeader(b[:], Version)
	h, err := ParseHeader(b[:], Version, DefaultMaxPayload)
	wantErr(t, "ParseHeader", err, nil)
	if h != (Header{Version: Version, Type: TypeData, Stream: 9, Length: 5}) {
		t.Fatalf("header %+v", h)
	}
	wire := AppendFrame([]byte("prefix"), f, Version)
	if want := append([]byte("prefix"), append(b[:], "hello"...)...); !bytes.Equal(wire, want) {
		t.Fatalf("AppendFrame = % x, want % x", wire, want)
	}
	f.Release()
	f.Release() // safe twice
	if f.Payload != nil {
		t.Fatal("Release left the payload")
	}
}
