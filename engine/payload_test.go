package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// v1Hello is a typical version-1 HELLO.
func v1Hello(role Role) *Hello {
	return &Hello{MinVersion: 1, MaxVersion: 1, Role: role, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow}
}

func TestHelloLayout(t *testing.T) {
	h := &Hello{MinVersion: 1, MaxVersion: 2, Role: RoleDialer, Capabilities: 0x01020304, MaxPayload: 0x00010000, InitialWindow: 0x00040000}
	want := []byte{
		'S', 'M', 'U', 'X', 1, 2, 1, 0,
		0x01, 0x02, 0x03, 0x04,
		0x00, 0x01, 0x00, 0x00,
		0x00, 0x04, 0x00, 0x00,
	}
	got := AppendHello([]byte("pre"), h)
	if !bytes.Equal(got, append([]byte("pre"), want...)) {
		t.Fatalf("AppendHello = % x, want pre + % x", got, want)
	}
	// One extension: tag, u16 length, value.
	h.Extensions = map[uint8][]byte{0x42: []byte("abc")}
	got = AppendHello(nil, h)
	if !bytes.Equal(got, append(append([]byte(nil), want...), 0x42, 0, 3, 'a', 'b', 'c')) {
		t.Fatalf("AppendHello with extension = % x", got)
	}
}

func TestHelloRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		h    Hello
	}{
		{"plain", *v1Hello(RoleAccepter)},
		{"dialer with capabilities", Hello{MinVersion: 1, MaxVersion: 7, Role: RoleDialer, Capabilities: 0xFFFFFFFF, MaxPayload: 1 << 20, InitialWindow: MaxWindow}},
		{"one extension", Hello{MinVersion: 1, MaxVersion: 1, Role: RoleDialer, MaxPayload: 1024, InitialWindow: 1024,
			Extensions: map[uint8][]byte{1: []byte("key id")}}},
		{"several extensions", Hello{MinVersion: 1, MaxVersion: 1, Role: RoleAccepter, MaxPayload: 1024, InitialWindow: 1024,
			Extensions: map[uint8][]byte{0: {0}, 1: bytes.Repeat([]byte{0xAB}, 300), 200: []byte("link id"), 255: []byte("x")}}},
		{"empty extension value", Hello{MinVersion: 1, MaxVersion: 1, Role: RoleAccepter, MaxPayload: 1024, InitialWindow: 1024,
			Extensions: map[uint8][]byte{9: nil}}},
		{"unknown role kept for Negotiate", Hello{MinVersion: 1, MaxVersion: 1, Role: 7, MaxPayload: 1024, InitialWindow: 1024}},
		{"versions not checked here", Hello{MinVersion: 9, MaxVersion: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendHello(nil, &tc.h)
			got, err := ParseHello(b)
			wantErr(t, "ParseHello", err, nil)
			if !reflect.DeepEqual(*got, tc.h) {
				t.Fatalf("ParseHello = %+v, want %+v", *got, tc.h)
			}
		})
	}
}

func TestHelloReservedByteIgnored(t *testing.T) {
	b := AppendHello(nil, v1Hello(RoleDialer))
	b[7] = 0xFF
	got, err := ParseHello(b)
	wantErr(t, "ParseHello", err, nil)
	if !reflect.DeepEqual(got, v1Hello(RoleDialer)) {
		t.Fatalf("got %+v", got)
	}
}

func TestHelloExtensionAliasing(t *testing.T) {
	b := AppendHello(nil, &Hello{Extensions: map[uint8][]byte{5: []byte("val")}})
	h, err := ParseHello(b)
	wantErr(t, "ParseHello", err, nil)
	b[len(b)-1] = 'X' // the frame buffer is reused after parsing
	if string(h.Extensions[5]) != "val" {
		t.Fatalf("extension aliases the payload: %q", h.Extensions[5])
	}
}

func TestParseHelloErrors(t *testing.T) {
	good := AppendHello(nil, v1Hello(RoleDialer))
	tests := []struct {
		name string
		p    []byte
		want error
	}{
		{"empty", nil, ErrBadMagic},
		{"short magic", []byte("SMU"), ErrBadMagic},
		{"wrong magic", append([]byte("SMUY"), good[4:]...), ErrBadMagic},
		{"lower-case magic", append([]byte("smux"), good[4:]...), ErrBadMagic},
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrBadMagic},
		{"magic only", []byte("SMUX"), ErrMalformed},
		{"fixed part short", good[:helloFixedLen-1], ErrMalformed},
		{"extension header 1 byte", append(append([]byte(nil), good...), 1), ErrMalformed},
		{"extension header 2 bytes", append(append([]byte(nil), good...), 1, 0), ErrMalformed},
		{"extension value short", append(append([]byte(nil), good...), 1, 0, 4, 'a', 'b', 'c'), ErrMalformed},
		{"second extension short", append(append([]byte(nil), good...), 1, 0, 1, 'a', 2, 0xFF, 0xFF), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHello(tc.p)
			wantErr(t, "ParseHello", err, tc.want)
			wantErr(t, "ParseHello", err, ErrProtocol)
			if h != nil {
				t.Fatalf("got a Hello with an error: %+v", h)
			}
		})
	}
}

// TestHelloFirstSixBytes checks what lets builds of different versions tell
// each other their versions: magic and the version range at fixed offsets.
func TestHelloFirstSixBytes(t *testing.T) {
	for _, v := range [][2]uint8{{1, 1}, {1, 9}, {200, 255}, {0, 0}} {
		b := AppendHello(nil, &Hello{MinVersion: v[0], MaxVersion: v[1], Role: RoleDialer, MaxPayload: 1024, InitialWindow: 1024})
		if string(b[:4]) != "SMUX" || b[4] != v[0] || b[5] != v[1] {
			t.Fatalf("versions %v: first six bytes % x", v, b[:6])
		}
	}
}

func TestNegotiate(t *testing.T) {
	hello := func(minV, maxV uint8, role Role) *Hello {
		h := v1Hello(role)
		h.MinVersion, h.MaxVersion = minV, maxV
		return h
	}
	tests := []struct {
		name          string
		local, remote *Hello
		want          error
		version       uint8
	}{
		{"same version", hello(1, 1, RoleDialer), hello(1, 1, RoleAccepter), nil, 1},
		{"highest common", hello(1, 3, RoleDialer), hello(2, 5, RoleAccepter), nil, 3},
		{"peer newer overlapping", hello(1, 1, RoleDialer), hello(1, 4, RoleAccepter), nil, 1},
		{"peer older overlapping", hello(1, 4, RoleAccepter), hello(1, 2, RoleDialer), nil, 2},
		{"single point", hello(1, 3, RoleDialer), hello(3, 3, RoleAccepter), nil, 3},
		{"peer too new", hello(1, 1, RoleDialer), hello(2, 3, RoleAccepter), ErrVersion, 0},
		{"peer too old", hello(2, 3, RoleDialer), hello(1, 1, RoleAccepter), ErrVersion, 0},
		{"version checked before role", hello(1, 1, RoleDialer), hello(2, 2, RoleDialer), ErrVersion, 0},
		{"empty peer range", hello(1, 1, RoleDialer), hello(3, 2, RoleAccepter), ErrMalformed, 0},
		{"same role dialer", hello(1, 1, RoleDialer), hello(1, 1, RoleDialer), ErrMalformed, 0},
		{"same role accepter", hello(1, 1, RoleAccepter), hello(1, 1, RoleAccepter), ErrMalformed, 0},
		{"unknown role", hello(1, 1, RoleDialer), &Hello{MinVersion: 1, MaxVersion: 1, Role: 2, MaxPayload: 1024, InitialWindow: 1024}, ErrMalformed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Negotiate(tc.local, tc.remote)
			wantErr(t, "Negotiate", err, tc.want)
			if err != nil {
				wantErr(t, "Negotiate", err, ErrProtocol)
				if tc.want == ErrVersion {
					// Both ranges are named, so both sides can report them.
					for _, h := range []*Hello{tc.local, tc.remote} {
						r := fmt.Sprintf("%d..%d", h.MinVersion, h.MaxVersion)
						if !strings.Contains(err.Error(), r) {
							t.Errorf("version error %q does not name the range %s", err, r)
						}
					}
				}
				return
			}
			if p.Version != tc.version {
				t.Fatalf("version %d, want %d", p.Version, tc.version)
			}
			// The peer, running Negotiate on the same two HELLOs, agrees.
			q, err := Negotiate(tc.remote, tc.local)
			wantErr(t, "Negotiate mirrored", err, nil)
			if q.Version != p.Version {
				t.Fatalf("peers disagree: %d and %d", p.Version, q.Version)
			}
		})
	}
}

func TestNegotiateParams(t *testing.T) {
	local := &Hello{MinVersion: 1, MaxVersion: 1, Role: RoleDialer, Capabilities: 0b1110, MaxPayload: 32 << 10, InitialWindow: 128 << 10}
	remote := &Hello{MinVersion: 1, MaxVersion: 1, Role: RoleAccepter, Capabilities: 0b0111, MaxPayload: 64 << 10, InitialWindow: 512 << 10}
	p, err := Negotiate(local, remote)
	wantErr(t, "Negotiate", err, nil)
	want := Params{Version: 1, SendMax: 32 << 10, RecvMax: 32 << 10, SendWindow: 512 << 10, RecvWindow: 128 << 10, Capabilities: 0b0110}
	if p != want {
		t.Fatalf("params %+v, want %+v", p, want)
	}
	q, err := Negotiate(remote, local)
	wantErr(t, "Negotiate", err, nil)
	want = Params{Version: 1, SendMax: 32 << 10, RecvMax: 64 << 10, SendWindow: 128 << 10, RecvWindow: 512 << 10, Capabilities: 0b0110}
	if q != want {
		t.Fatalf("mirrored params %+v, want %+v", q, want)
	}
}

func TestNegotiateLimits(t *testing.T) {
	tests := []struct {
		name       string
		maxPayload uint32
		window     uint32
		want       error
	}{
		{"minimums", 1024, 1024, nil},
		{"maximum window", 1024, MaxWindow, nil},
		{"big payload", 1 << 24, DefaultWindow, nil},
		{"payload too small", 1023, DefaultWindow, ErrMalformed},
		{"payload zero", 0, DefaultWindow, ErrMalformed},
		{"window too small", DefaultMaxPayload, 1023, ErrMalformed},
		{"window zero", DefaultMaxPayload, 0, ErrMalformed},
		{"window too big", DefaultMaxPayload, MaxWindow + 1, ErrMalformed},
		{"window max u32", DefaultMaxPayload, 0xFFFFFFFF, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			remote := &Hello{MinVersion: 1, MaxVersion: 1, Role: RoleAccepter, MaxPayload: tc.maxPayload, InitialWindow: tc.window}
			_, err := Negotiate(v1Hello(RoleDialer), remote)
			wantErr(t, "Negotiate", err, tc.want)
		})
	}
}

func TestRole(t *testing.T) {
	tests := []struct {
		r     Role
		name  string
		first uint32
		owns  map[uint32]bool
	}{
		{RoleDialer, "dialer", 1, map[uint32]bool{0: false, 1: true, 2: false, 3: true, 0xFFFFFFFF: true, 0xFFFFFFFE: false}},
		{RoleAccepter, "accepter", 2, map[uint32]bool{0: false, 1: false, 2: true, 4: true, 0xFFFFFFFF: false, 0xFFFFFFFE: true}},
	}
	for _, tc := range tests {
		if tc.r.String() != tc.name || tc.r.FirstStreamID() != tc.first {
			t.Errorf("%v: name %q first %d", uint8(tc.r), tc.r.String(), tc.r.FirstStreamID())
		}
		if !tc.r.Owns(tc.r.FirstStreamID()) {
			t.Errorf("%v does not own its first id", tc.r)
		}
		for id, want := range tc.owns {
			if got := tc.r.Owns(id); got != want {
				t.Errorf("%v.Owns(%d) = %v, want %v", tc.r, id, got, want)
			}
		}
	}
}

func TestOpenRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		kind   TargetKind
		target string
		data   []byte
	}{
		{"no data", TargetDial, "example.com:80", nil},
		{"first bytes", TargetDial, "10.0.0.1:22", []byte("SSH-2.0-OpenSSH\r\n")},
		{"ipv6", TargetDial, "[::1]:443", []byte{0x16, 0x03, 0x01}},
		{"unicode", TargetDial, "bücher.example:80", nil},
		{"max target", TargetDial, strings.Repeat("h", MaxTargetLen-3) + ":80", nil},
		{"unknown kind kept", 200, "x:1", []byte("y")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			p := AppendOpen(nil, tc.kind, tc.target, tc.data)
			if len(p) != 3+len(tc.target)+len(tc.data) || p[0] != byte(tc.kind) || int(binary.BigEndian.Uint16(p[1:])) != len(tc.target) {
				t.Fatalf("layout % x", p)
			}
			o, err := ParseOpen(p)
			wantErr(t, "ParseOpen", err, nil)
			if o.Kind != tc.kind || o.Target != tc.target || !bytes.Equal(o.Data, tc.data) {
				t.Fatalf("ParseOpen = %+v", o)
			}
			if len(o.Data) > 0 && &o.Data[0] != &p[3+len(tc.target)] {
				t.Error("Data does not alias the payload")
			}
			f := NewOpen(5, tc.kind, tc.target, tc.data)
			if f.Type != TypeOpen || f.Stream != 5 || !bytes.Equal(f.Bytes(), p) {
				t.Fatalf("NewOpen = %v % x", f, f.Bytes())
			}
			f.Release()
		})
	}
}

func TestParseOpenErrors(t *testing.T) {
	open := func(n uint16, rest string) []byte {
		return append(binary.BigEndian.AppendUint16([]byte{0}, n), rest...)
	}
	tests := []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"kind only", []byte{0}},
		{"length cut", []byte{0, 0}},
		{"empty target", open(0, "data")},
		{"target over limit", open(MaxTargetLen+1, strings.Repeat("a", MaxTargetLen+1))},
		{"target cut short", open(10, "short")},
		{"target length huge", open(0xFFFF, "x")},
		{"target not UTF-8", open(4, "a\xffb:")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOpen(tc.p)
			wantErr(t, "ParseOpen", err, ErrMalformed)
			wantErr(t, "ParseOpen", err, ErrProtocol)
		})
	}
}

func TestReasonRoundTrip(t *testing.T) {
	tests := []struct {
		code Code
		text string
	}{
		{CodeNormal, ""},
		{CodeDialFailed, "dial tcp 10.0.0.1:80: connection refused"},
		{CodeVersion, "peer speaks versions 2..3, we speak 1..1"},
		{CodeUnknownTarget, "ünïcödé ✓ 😀"},
		{0xFFFF, strings.Repeat("z", MaxReasonLen)},
	}
	for _, tc := range tests {
		checkPool(t)
		p := AppendReason(nil, tc.code, tc.text)
		if len(p) != 2+len(tc.text) || Code(binary.BigEndian.Uint16(p)) != tc.code {
			t.Fatalf("layout % x", p)
		}
		r, err := ParseReason(p)
		wantErr(t, "ParseReason", err, nil)
		if r.Code != tc.code || r.Text != tc.text {
			t.Fatalf("ParseReason = %+v, want %v %q", r, tc.code, tc.text)
		}
		for _, ty := range []Type{TypeOpenFail, TypeRst, TypeGoAway} {
			f := NewReason(ty, 3, tc.code, tc.text)
			if f.Type != ty || f.Stream != 3 || !bytes.Equal(f.Bytes(), p) {
				t.Fatalf("NewReason(%v) = %v % x", ty, f, f.Bytes())
			}
			f.Release()
		}
	}
}

// TestReasonCut checks that text over MaxReasonLen is cut to at most
// MaxReasonLen bytes on a rune boundary, losing less than one rune.
func TestReasonCut(t *testing.T) {
	tests := []struct {
		name string
		text string
		want int // length of the text that is kept
	}{
		{"exactly the limit", strings.Repeat("a", 1024), 1024},
		{"one over, ascii", strings.Repeat("a", 1025), 1024},
		{"2-byte rune across the limit", strings.Repeat("a", 1023) + "é", 1023},
		{"2-byte rune ending at the limit", strings.Repeat("a", 1022) + "éa", 1024},
		{"3-byte rune, 1 byte in", strings.Repeat("a", 1023) + "€", 1023},
		{"3-byte rune, 2 bytes in", strings.Repeat("a", 1022) + "€", 1022},
		{"4-byte rune, 1 byte in", strings.Repeat("a", 1023) + "😀", 1023},
		{"4-byte rune, 2 bytes in", strings.Repeat("a", 1022) + "😀", 1022},
		{"4-byte rune, 3 bytes in", strings.Repeat("a", 1021) + "😀", 1021},
		{"4-byte rune ending at the limit", strings.Repeat("a", 1020) + "😀b", 1024},
		{"all 3-byte runes", strings.Repeat("€", 1000), 1023},
		{"all 4-byte runes", strings.Repeat("😀", 1000), 1024},
		{"very long", strings.Repeat("é", 100000), 1024},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			p := AppendReason(nil, CodeInternal, tc.text)
			r, err := ParseReason(p)
			wantErr(t, "ParseReason", err, nil)
			if len(r.Text) != tc.want || !strings.HasPrefix(tc.text, r.Text) || !utf8.ValidString(r.Text) {
				t.Fatalf("kept %d bytes (valid %v), want a %d-byte prefix", len(r.Text), utf8.ValidString(r.Text), tc.want)
			}
			f := NewReason(TypeRst, 1, CodeInternal, tc.text)
			if !bytes.Equal(f.Bytes(), p) {
				t.Fatal("NewReason differs from AppendReason")
			}
			f.Release()
		})
	}
}

func TestParseReasonErrors(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"text over limit", append([]byte{0, 1}, strings.Repeat("a", MaxReasonLen+1)...)},
		{"text not UTF-8", []byte{0, 1, 'a', 0xC3}},
		{"surrogate", []byte{0, 1, 0xED, 0xA0, 0x80}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseReason(tc.p)
			wantErr(t, "ParseReason", err, ErrMalformed)
			wantErr(t, "ParseReason", err, ErrProtocol)
		})
	}
}

// TestAppendReasonAlwaysParses: whatever text a caller hands AppendReason
// (an OS error naming a file, say), the payload must be one ParseReason
// accepts, or the peer turns an RST or GOAWAY into a protocol error.
func TestAppendReasonAlwaysParses(t *testing.T) {
	for _, text := range []string{"open /tmp/\xff\xfe: no such file", "\xc3", strings.Repeat("a", 1023) + "\xff"} {
		p := AppendReason(nil, CodeInternal, text)
		if _, err := ParseReason(p); err != nil {
			t.Errorf("AppendReason(%q) does not parse: %v", text, err)
		}
	}
}

func TestCodeAndReasonString(t *testing.T) {
	codes := map[Code]string{
		CodeNormal: "normal", CodeProtocol: "protocol error", CodeRefused: "refused", CodeDialFailed: "dial failed",
		CodeFlowControl: "flow control", CodeVersion: "version mismatch", CodeInternal: "internal error",
		CodeShutdown: "shutdown", CodeTooManyStream: "too many streams", CodeTimeout: "timeout",
		CodeCancelled: "cancelled", CodeUnknownTarget: "unknown target kind", CodeAuth: "authentication failed",
		CodeBindFailed: "bind failed", CodeUnknownLink: "unknown link", CodeResumeExpired: "link not resumed in time", CodeOverload: "overload", CodeUnreachable: "host unreachable", 18: "code 18", 0xFFFF: "code 65535",
	}
	for c, want := range codes {
		if got := c.String(); got != want {
			t.Errorf("Code(%d).String() = %q, want %q", uint16(c), got, want)
		}
	}
	// The numbers are wire values: they must never change.
	if CodeProtocol != 1 || CodeFlowControl != 4 || CodeVersion != 5 || CodeUnknownTarget != 11 {
		t.Error("reason code values changed")
	}
	if got := (Reason{Code: CodeDialFailed, Text: "refused"}).String(); got != "dial failed: refused" {
		t.Errorf("Reason.String() = %q", got)
	}
	if got := (Reason{Code: CodeNormal}).String(); got != "normal" {
		t.Errorf("Reason.String() = %q", got)
	}
}

func TestCredit(t *testing.T) {
	checkPool(t)
	tests := []struct {
		name string
		p    []byte
		want uint32
		err  error
	}{
		{"one", []byte{0, 0, 0, 1}, 1, nil},
		{"quarter window", []byte{0, 1, 0, 0}, 64 << 10, nil},
		{"max", binary.BigEndian.AppendUint32(nil, MaxWindow), MaxWindow, nil},
		{"zero", []byte{0, 0, 0, 0}, 0, ErrMalformed},
		{"over max", binary.BigEndian.AppendUint32(nil, MaxWindow+1), 0, ErrMalformed},
		{"all ones", []byte{0xFF, 0xFF, 0xFF, 0xFF}, 0, ErrMalformed},
		{"short", []byte{0, 0, 1}, 0, ErrMalformed},
		{"long", []byte{0, 0, 0, 1, 0}, 0, ErrMalformed},
		{"empty", nil, 0, ErrMalformed},
	}
	for _, tc := range tests {
		n, err := ParseCredit(tc.p)
		wantErr(t, tc.name, err, tc.err)
		if n != tc.want {
			t.Errorf("%s: ParseCredit = %d, want %d", tc.name, n, tc.want)
		}
		if err == nil {
			f := NewCredit(7, n)
			if f.Type != TypeCredit || f.Stream != 7 || !bytes.Equal(f.Bytes(), tc.p) {
				t.Errorf("%s: NewCredit = %v % x", tc.name, f, f.Bytes())
			}
			f.Release()
		}
	}
}

func TestPing(t *testing.T) {
	checkPool(t)
	for _, v := range []uint64{0, 1, 0x0102030405060708, ^uint64(0)} {
		for _, ty := range []Type{TypePing, TypePong} {
			f := NewPing(ty, v)
			if f.Type != ty || f.Stream != 0 || f.Len() != PingLen {
				t.Fatalf("NewPing = %v", f)
			}
			got, err := ParsePing(f.Bytes())
			wantErr(t, "ParsePing", err, nil)
			if got != v {
				t.Fatalf("ParsePing = %x, want %x", got, v)
			}
			if binary.BigEndian.Uint64(f.Bytes()) != v {
				t.Fatal("PING is not big-endian")
			}
			f.Release()
		}
	}
	for _, n := range []int{0, 1, 7, 9, 16} {
		_, err := ParsePing(make([]byte, n))
		wantErr(t, "ParsePing", err, ErrMalformed)
	}
}

func TestConstructors(t *testing.T) {
	checkPool(t)
	h := v1Hello(RoleDialer)
	f := NewHello(h)
	if f.Type != TypeHello || f.Stream != 0 || !bytes.Equal(f.Bytes(), AppendHello(nil, h)) {
		t.Fatalf("NewHello = %v", f)
	}
	f.Release()
	for _, ty := range []Type{TypeOpenOK, TypeFin} {
		f := NewEmpty(ty, 11)
		if f.Type != ty || f.Stream != 11 || f.Payload != nil {
			t.Fatalf("NewEmpty = %v", f)
		}
	}
}
