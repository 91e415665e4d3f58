package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// wantFrame is what ReadFrame should return for one frame.
type wantFrame struct {
	Type    Type
	Flags   uint16
	Stream  uint32
	Payload []byte
}

// sampleFrames returns one frame of every post-handshake type on the wire,
// in order, and what ReadFrame must return for each.
func sampleFrames(tb testing.TB) (wire []byte, want []wantFrame) {
	tb.Helper()
	frames := []*Frame{
		NewOpen(1, TargetDial, "example.com:80", []byte("GET /")),
		NewEmpty(TypeOpenOK, 1),
		dataFrame(tb, TypeData, 1, "some bytes"),
		NewCredit(1, 4096),
		NewEmpty(TypeFin, 1),
		NewReason(TypeOpenFail, 3, CodeDialFailed, "connection refused"),
		NewReason(TypeRst, 5, CodeCancelled, ""),
		NewPing(TypePing, 0x0102030405060708),
		NewPing(TypePong, 0x0102030405060708),
		NewReason(TypeGoAway, 0, CodeShutdown, "bye"),
		{Type: TypeData, Flags: 0x8002, Stream: 0xFFFFFFFF}, // empty, unknown flags kept
	}
	for _, f := range frames {
		want = append(want, wantFrame{f.Type, f.Flags, f.Stream, append([]byte(nil), f.Bytes()...)})
		wire = append(wire, encodeFrame(tb, f, Version)...)
	}
	return wire, want
}

// readAll reads frames from r until an error, checks them against want and
// releases them; it returns the error that ended the reading.
func readAll(tb testing.TB, r *Reader, want []wantFrame) error {
	tb.Helper()
	for i := 0; ; i++ {
		f, err := r.ReadFrame()
		if err != nil {
			if i != len(want) && errors.Is(err, io.EOF) {
				tb.Fatalf("EOF after %d frames, want %d", i, len(want))
			}
			return err
		}
		if i >= len(want) {
			f.Release()
			tb.Fatalf("frame %d (%v) beyond the %d expected", i, f, len(want))
		}
		w := want[i]
		got := wantFrame{f.Type, f.Flags, f.Stream, append([]byte(nil), f.Bytes()...)}
		if f.Len() == 0 && f.Payload != nil {
			tb.Errorf("frame %d: empty payload in a buffer", i)
		}
		f.Release()
		if got.Type != w.Type || got.Flags != w.Flags || got.Stream != w.Stream || !bytes.Equal(got.Payload, w.Payload) {
			tb.Fatalf("frame %d = %+v, want %+v", i, got, w)
		}
	}
}

// wireReader is one way of delivering wire bytes to a Reader, with the
// Reader's buffer size.
type wireReader struct {
	name string
	make func() io.Reader
	size int
}

// wireReaders delivers wire whole, through small buffers, a byte at a
// time, in halves and with the last data arriving with EOF.
func wireReaders(wire []byte) []wireReader {
	return []wireReader{
		{"whole", func() io.Reader { return bytes.NewReader(wire) }, 4096},
		{"small buffer", func() io.Reader { return bytes.NewReader(wire) }, 16},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(wire)) }, 16},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(wire)) }, 64},
		{"EOF with data", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(wire)) }, 64},
	}
}

func TestReadFrameGoodStreams(t *testing.T) {
	wire, want := sampleFrames(t)
	for _, tc := range wireReaders(wire) {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(tc.make(), tc.size)
			r.Version = Version
			err := readAll(t, r, want)
			if err != io.EOF {
				t.Fatalf("end of stream: %v, want io.EOF", err)
			}
			if r.Buffered() != 0 {
				t.Fatalf("Buffered() = %d at the end", r.Buffered())
			}
		})
	}
}

// TestReadFrameLargePayloads: payloads around and past directReadMin,
// which ReadFrame reads partly from its buffer and the rest straight from
// the source, arrive whole and in order however the source delivers them,
// and one cut short, or failing, inside the direct part is reported as
// such.
func TestReadFrameLargePayloads(t *testing.T) {
	var wire []byte
	var want []wantFrame
	for i, n := range []int{directReadMin - 1, directReadMin, 3*directReadMin + 5, 10, DefaultMaxPayload} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		p[0], p[n-1] = byte(i), byte(n)
		f := &Frame{Type: TypeData, Stream: uint32(i + 1), Payload: GetBuffer(n)}
		copy(f.Payload.B, p)
		wire = append(wire, encodeFrame(t, f, Version)...)
		want = append(want, wantFrame{Type: TypeData, Stream: uint32(i + 1), Payload: p})
	}
	for _, tc := range wireReaders(wire) {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(tc.make(), tc.size)
			r.Version = Version
			if err := readAll(t, r, want); err != io.EOF {
				t.Fatalf("end of stream: %v, want io.EOF", err)
			}
		})
	}
	big := encodeFrame(t, dataFrame(t, TypeData, 1, string(bytes.Repeat([]byte("x"), 4*directReadMin))), Version)
	for _, tc := range []struct {
		name string
		r    io.Reader
		want error
	}{
		{"cut short", bytes.NewReader(big[:len(big)-1]), ErrTruncated},
		{"carrier error", io.MultiReader(bytes.NewReader(big[:2*directReadMin]), iotest.ErrReader(errCarrier)), errCarrier},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(tc.r, 64)
			r.Version = Version
			_, err := r.ReadFrame()
			wantErr(t, "ReadFrame", err, tc.want)
		})
	}
}

func TestReadFrameHandshake(t *testing.T) {
	checkPool(t)
	hello := &Hello{MinVersion: 1, MaxVersion: 3, Role: RoleDialer, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow}
	wire := encodeFrame(t, NewHello(hello), 3) // any version byte on HELLO
	data := encodeFrame(t, dataFrame(t, TypeData, 1, "x"), Version)

	r := NewReader(bytes.NewReader(append(append([]byte(nil), wire...), data...)), 64)
	f, err := r.ReadFrame()
	wantErr(t, "HELLO", err, nil)
	if f.Type != TypeHello || f.Stream != 0 {
		t.Fatalf("got %v", f)
	}
	got, err := ParseHello(f.Bytes())
	f.Release()
	wantErr(t, "ParseHello", err, nil)
	if got.MaxVersion != 3 || got.Role != RoleDialer {
		t.Fatalf("hello %+v", got)
	}
	// DATA while still in handshake mode is not a sockmux peer.
	_, err = r.ReadFrame()
	wantErr(t, "DATA in handshake", err, ErrBadMagic)

	// Once the version is set, the same DATA reads fine.
	r = NewReader(bytes.NewReader(data), 64)
	r.Version = Version
	wantErr(t, "DATA after handshake", readAll(t, r, []wantFrame{{Type: TypeData, Stream: 1, Payload: []byte("x")}}), io.EOF)
}

var errCarrier = errors.New("carrier broke")

func TestReadFrameErrors(t *testing.T) {
	hdr := func(h Header) []byte {
		b := make([]byte, HeaderLen)
		PutHeader(b, h)
		return b
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	good := encodeFrame(t, dataFrame(t, TypeData, 1, "abc"), Version)
	tests := []struct {
		name     string
		r        io.Reader
		version  uint8
		max      uint32 // 0: default
		frames   int    // good frames before the error
		want     error
		notTrunc bool // the error must not be ErrTruncated
	}{
		{name: "clean EOF", r: bytes.NewReader(nil), version: 1, want: io.EOF},
		{name: "clean EOF after frames", r: bytes.NewReader(cat(good, good)), version: 1, frames: 2, want: io.EOF},
		{name: "truncated header", r: bytes.NewReader(good[:5]), version: 1, want: ErrTruncated},
		{name: "truncated header after a frame", r: bytes.NewReader(cat(good, good[:HeaderLen-1])), version: 1, frames: 1, want: ErrTruncated},
		{name: "truncated payload", r: bytes.NewReader(good[:HeaderLen+2]), version: 1, want: ErrTruncated},
		{name: "payload missing", r: bytes.NewReader(good[:HeaderLen]), version: 1, want: ErrTruncated},
		{name: "truncated HELLO", r: bytes.NewReader(hdr(Header{Version: 1, Type: TypeHello, Length: 20})), version: 0, want: ErrTruncated},
		{name: "oversize default", r: bytes.NewReader(hdr(Header{Version: 1, Type: TypeData, Stream: 1, Length: DefaultMaxPayload + 1})), version: 1, want: ErrFrameTooLarge},
		{name: "oversize custom", r: bytes.NewReader(hdr(Header{Version: 1, Type: TypeData, Stream: 1, Length: 1025})), version: 1, max: 1024, want: ErrFrameTooLarge},
		{name: "oversize HELLO", r: bytes.NewReader(hdr(Header{Version: 1, Type: TypeHello, Length: MaxHelloPayload + 1})), version: 0, want: ErrFrameTooLarge},
		{name: "bad version", r: bytes.NewReader(hdr(Header{Version: 9, Type: TypeData, Stream: 1})), version: 1, want: ErrVersion},
		{name: "unknown type", r: bytes.NewReader(cat(good, hdr(Header{Version: 1, Type: 0x42}))), version: 1, frames: 1, want: ErrUnknownType},
		{name: "carrier error in header", r: io.MultiReader(bytes.NewReader(good[:3]), iotest.ErrReader(errCarrier)), version: 1, want: errCarrier, notTrunc: true},
		{name: "carrier error in payload", r: io.MultiReader(bytes.NewReader(good[:HeaderLen+1]), iotest.ErrReader(errCarrier)), version: 1, want: errCarrier, notTrunc: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(tc.r, 16)
			r.Version = tc.version
			if tc.max != 0 {
				r.MaxPayload = tc.max
			}
			want := make([]wantFrame, tc.frames)
			for i := range want {
				want[i] = wantFrame{Type: TypeData, Stream: 1, Payload: []byte("abc")}
			}
			err := readAll(t, r, want)
			wantErr(t, "ReadFrame", err, tc.want)
			if tc.notTrunc && errors.Is(err, ErrTruncated) {
				t.Fatalf("carrier error reported as truncation: %v", err)
			}
			if tc.want == io.EOF && err != io.EOF {
				t.Fatalf("clean end is %v, want io.EOF itself", err)
			}
		})
	}
}

// FuzzReadFrame feeds arbitrary bytes to a Reader in handshake mode
// (Version 0) and in version-1 mode. It must never panic, every frame it
// returns must re-encode to the bytes it was read from, the reading must end
// with io.EOF exactly at the end of the input and with a protocol error
// otherwise, and no buffer may leak.
func FuzzReadFrame(f *testing.F) {
	wire, _ := sampleFrames(f)
	f.Add(wire)
	f.Add([]byte{})
	hello := &Hello{MinVersion: 1, MaxVersion: 1, Role: RoleAccepter, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow,
		Extensions: map[uint8][]byte{7: []byte("ext")}}
	hw := encodeFrame(f, NewHello(hello), Version)
	f.Add(hw)
	f.Add(append(append([]byte(nil), hw...), hw...))
	f.Add(append(append([]byte(nil), hw...), wire...))
	f.Add(hw[:len(hw)-1])
	f.Add(wire[:HeaderLen-1])
	for _, fr := range []*Frame{
		NewOpen(3, TargetDial, "[::1]:22", nil),
		NewCredit(2, MaxWindow),
		NewReason(TypeGoAway, 0, CodeVersion, "peer speaks versions 2..3, we speak 1..1"),
		NewEmpty(TypeFin, 9),
	} {
		f.Add(encodeFrame(f, fr, Version))
	}
	var big [HeaderLen]byte
	PutHeader(big[:], Header{Version: 1, Type: TypeData, Stream: 1, Length: DefaultMaxPayload})
	f.Add(big[:])

	f.Fuzz(func(t *testing.T, data []byte) {
		checkPool(t)
		for _, v := range []uint8{0, Version} {
			fuzzReadFrames(t, data, v)
		}
	})
}

func fuzzReadFrames(t *testing.T, data []byte, v uint8) {
	r := NewReader(bytes.NewReader(data), 16)
	r.Version = v
	limit := uint32(DefaultMaxPayload)
	if v == 0 {
		limit = MaxHelloPayload
	}
	off := 0
	for {
		f, err := r.ReadFrame()
		if err != nil {
			if off == len(data) {
				if err != io.EOF {
					t.Fatalf("v%d: at the end of the input: %v, want io.EOF", v, err)
				}
			} else if !errors.Is(err, ErrProtocol) {
				t.Fatalf("v%d: %d bytes left: %v, want a protocol error", v, len(data)-off, err)
			}
			return
		}
		if off+f.WireLen() > len(data) {
			f.Release()
			t.Fatalf("v%d: frame %v runs past the input", v, f)
		}
		if uint32(f.Len()) > limit {
			f.Release()
			t.Fatalf("v%d: frame %v over the limit %d", v, f, limit)
		}
		if v == 0 && f.Type != TypeHello {
			f.Release()
			t.Fatalf("v0: %v in handshake mode", f)
		}
		if v != 0 && (data[off] != v || !f.Type.Valid() || f.Type == TypeHello) {
			f.Release()
			t.Fatalf("v%d: accepted %v with version byte %d", v, f, data[off])
		}
		re := AppendFrame(nil, f, data[off])
		n := f.WireLen()
		f.Release()
		if !bytes.Equal(re, data[off:off+n]) {
			t.Fatalf("v%d: re-encoded % x, read from % x", v, re, data[off:off+n])
		}
		off += n
	}
}

func ExampleReader_ReadFrame() {
	var wire []byte
	for _, f := range []*Frame{NewEmpty(TypeOpenOK, 1), NewPing(TypePing, 42)} {
		wire = AppendFrame(wire, f, Version)
		f.Release()
	}
	r := NewReader(bytes.NewReader(wire), 4096)
	r.Version = Version
	for {
		f, err := r.ReadFrame()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(f)
		f.Release()
	}
	// Output:
	// OPEN_OK stream=1 len=0
	// PING stream=0 len=8
	// EOF
}
