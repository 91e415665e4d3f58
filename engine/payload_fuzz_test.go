package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseHello: no panic; errors are protocol errors; a parsed HELLO
// re-encodes to one that parses to the same value, and to the same bytes
// (reserved byte aside) when there is at most one extension.
func FuzzParseHello(f *testing.F) {
	f.Add(AppendHello(nil, v1Hello(RoleDialer)))
	f.Add(AppendHello(nil, &Hello{MinVersion: 1, MaxVersion: 4, Role: RoleAccepter, Capabilities: 5, MaxPayload: 1 << 20, InitialWindow: 1 << 30,
		Extensions: map[uint8][]byte{1: []byte("auth"), 2: nil}}))
	f.Add(AppendHello(nil, &Hello{Extensions: map[uint8][]byte{0xFF: bytes.Repeat([]byte("x"), 100)}}))
	f.Add([]byte("SMUX"))
	f.Add([]byte("SMUX\x01\x01\x01\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := ParseHello(p)
		if err != nil {
			if !errors.Is(err, ErrProtocol) || h != nil {
				t.Fatalf("error %v (hello %v)", err, h)
			}
			return
		}
		enc := AppendHello(nil, h)
		h2, err := ParseHello(enc)
		if err != nil {
			t.Fatalf("re-encoded HELLO does not parse: %v", err)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip %+v -> %+v", h, h2)
		}
		entries := 0
		for rest := p[helloFixedLen:]; len(rest) > 0; entries++ {
			rest = rest[3+int(binary.BigEndian.Uint16(rest[1:])):]
		}
		if entries == len(h.Extensions) { // no repeated tag
			if len(enc) != len(p) {
				t.Fatalf("re-encoded %d bytes from %d", len(enc), len(p))
			}
			if entries <= 1 {
				want := append([]byte(nil), p...)
				want[7] = 0
				if !bytes.Equal(enc, want) {
					t.Fatalf("re-encoded % x from % x", enc, p)
				}
			}
		}
		// Negotiate must not panic on anything ParseHello accepts.
		_, _ = Negotiate(v1Hello(RoleDialer), h)
		_, _ = Negotiate(v1Hello(RoleAccepter), h)
	})
}

// FuzzParseOpen: no panic; a parsed OPEN re-encodes to the same bytes.
func FuzzParseOpen(f *testing.F) {
	f.Add(AppendOpen(nil, TargetDial, "example.com:80", nil))
	f.Add(AppendOpen(nil, TargetDial, "[::1]:22", []byte("SSH-2.0-x\r\n")))
	f.Add(AppendOpen(nil, 3, strings.Repeat("a", MaxTargetLen), []byte{0}))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		o, err := ParseOpen(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if len(o.Target) == 0 || len(o.Target) > MaxTargetLen || !utf8.ValidString(o.Target) {
			t.Fatalf("bad target accepted: %q", o.Target)
		}
		if enc := AppendOpen(nil, o.Kind, o.Target, o.Data); !bytes.Equal(enc, p) {
			t.Fatalf("re-encoded % x from % x", enc, p)
		}
	})
}

// FuzzParseReason: no panic; a parsed reason re-encodes to the same bytes;
// and any valid UTF-8 text, encoded, parses back to itself or, when too
// long, to a prefix less than one rune short of the limit.
func FuzzParseReason(f *testing.F) {
	f.Add(AppendReason(nil, CodeNormal, ""))
	f.Add(AppendReason(nil, CodeVersion, "peer speaks versions 2..3, we speak 1..1"))
	f.Add(AppendReason(nil, CodeDialFailed, strings.Repeat("€", 400)))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := ParseReason(p)
		if err == nil {
			if enc := AppendReason(nil, r.Code, r.Text); !bytes.Equal(enc, p) {
				t.Fatalf("re-encoded % x from % x", enc, p)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v", err)
		}

		text := string(p)
		if !utf8.ValidString(text) {
			return // see TestAppendReasonAlwaysParses
		}
		r, err = ParseReason(AppendReason(nil, CodeRefused, text))
		if err != nil {
			t.Fatalf("AppendReason(%q) does not parse: %v", text, err)
		}
		if r.Code != CodeRefused || !strings.HasPrefix(text, r.Text) {
			t.Fatalf("AppendReason(%q) -> %+v", text, r)
		}
		if len(text) <= MaxReasonLen && r.Text != text || len(text) > MaxReasonLen && len(r.Text) <= MaxReasonLen-utf8.UTFMax {
			t.Fatalf("AppendReason kept %d of %d bytes", len(r.Text), len(text))
		}
	})
}

// FuzzParseCredit: no panic; a parsed CREDIT re-encodes to the same bytes.
func FuzzParseCredit(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1})
	f.Add(binary.BigEndian.AppendUint32(nil, MaxWindow))
	f.Add(binary.BigEndian.AppendUint32(nil, DefaultWindow/4))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		checkPool(t)
		n, err := ParseCredit(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || n != 0 {
				t.Fatalf("%d, %v", n, err)
			}
			return
		}
		if n == 0 || n > MaxWindow {
			t.Fatalf("accepted credit %d", n)
		}
		fr := NewCredit(1, n)
		enc := append([]byte(nil), fr.Bytes()...)
		fr.Release()
		if !bytes.Equal(enc, p) {
			t.Fatalf("re-encoded % x from % x", enc, p)
		}
	})
}

// FuzzParsePing: no panic; a parsed PING re-encodes to the same bytes.
func FuzzParsePing(f *testing.F) {
	f.Add(binary.BigEndian.AppendUint64(nil, 0x0102030405060708))
	f.Add(make([]byte, PingLen))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		checkPool(t)
		v, err := ParsePing(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v", err)
			}
			return
		}
		for _, ty := range []Type{TypePing, TypePong} {
			fr := NewPing(ty, v)
			enc := append([]byte(nil), fr.Bytes()...)
			fr.Release()
			if !bytes.Equal(enc, p) {
				t.Fatalf("re-encoded % x from % x", enc, p)
			}
		}
	})
}

// TestWireExamples pins the worked example of docs/PROTOCOL.md §14: if the
// encoder changes these bytes, the document must change with it.
func TestWireExamples(t *testing.T) {
	checkPool(t)
	tests := []struct {
		name string
		f    *Frame
		hex  string
	}{
		{
			name: "dialer HELLO",
			f:    NewHello(&Hello{MinVersion: 1, MaxVersion: 1, Role: RoleDialer, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow}),
			hex:  "01010000000000000000001453" + "4d5558010101000000000000010000" + "00040000",
		},
		{
			name: "accepter HELLO",
			f:    NewHello(&Hello{MinVersion: 1, MaxVersion: 1, Role: RoleAccepter, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow}),
			hex:  "01010000000000000000001453" + "4d5558010100000000000000010000" + "00040000",
		},
		{
			name: "OPEN with first bytes",
			f:    NewOpen(1, TargetDial, "example.com:80", []byte("GET / HTTP/1.0\r\n\r\n")),
			hex:  "01020000000000010000002300000e6578616d706c652e636f6d3a3830474554202f20485454502f312e300d0a0d0a",
		},
	}
	for _, tc := range tests {
		if got := hex.EncodeToString(encodeFrame(t, tc.f, Version)); got != tc.hex {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.hex)
		}
	}
}
