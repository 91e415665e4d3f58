package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

func TestSeqFrameWire(t *testing.T) {
	checkPool(t)
	f := dataFrame(t, TypeData, 0x01020304, "abc")
	f.Flags = 0x8000 // an unknown flag is kept beside FlagSeq
	f.Seq = 0x1112131415161718
	if f.WireLen() != HeaderLen+SeqLen+3 {
		t.Fatalf("WireLen %d, want %d", f.WireLen(), HeaderLen+SeqLen+3)
	}
	var b [MaxHeaderLen]byte
	if n := f.PutHeader(b[:], Version); n != HeaderLen+SeqLen {
		t.Fatalf("PutHeader = %d, want %d", n, HeaderLen+SeqLen)
	}
	want := []byte{
		Version, byte(TypeData), 0x80, 0x01, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 3, // length: the payload only
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		'a', 'b', 'c',
	}
	wire := AppendFrame(nil, f, Version)
	if !bytes.Equal(wire, want) {
		t.Fatalf("AppendFrame = % x, want % x", wire, want)
	}
	if f.Flags != 0x8000 {
		t.Fatalf("PutHeader changed the frame's flags to %#x", f.Flags)
	}

	// Unsequenced: 12 bytes, no FlagSeq.
	f.Seq = 0
	var c [MaxHeaderLen]byte
	if n := f.PutHeader(c[:], Version); n != HeaderLen {
		t.Fatalf("PutHeader unsequenced = %d, want %d", n, HeaderLen)
	}
	if binary.BigEndian.Uint16(c[2:]) != 0x8000 || f.WireLen() != HeaderLen+3 {
		t.Fatalf("unsequenced flags %#x wire %d", binary.BigEndian.Uint16(c[2:]), f.WireLen())
	}
	if got := AppendFrame(nil, f, Version); len(got) != f.WireLen() {
		t.Fatalf("AppendFrame %d bytes, WireLen %d", len(got), f.WireLen())
	}
	f.Release()

	// An empty sequenced frame is 20 bytes.
	e := NewEmpty(TypeFin, 3)
	e.Seq = 1
	if got := encodeFrame(t, e, Version); len(got) != HeaderLen+SeqLen || e.WireLen() != HeaderLen+SeqLen {
		t.Fatalf("empty sequenced frame: %d bytes on the wire, WireLen %d", len(got), e.WireLen())
	}
	// With an After it is 24, the most a header takes.
	e.After = 1
	if got := encodeFrame(t, e, Version); len(got) != MaxHeaderLen || e.WireLen() != MaxHeaderLen {
		t.Fatalf("empty frame with an After: %d bytes on the wire, WireLen %d", len(got), e.WireLen())
	}
}

// seqSample is a frame to send and what reading it must give.
type seqSample struct {
	f       *Frame
	Type    Type
	Stream  uint32
	Seq     uint64
	Payload []byte
}

func seqSamples(tb testing.TB) (wire []byte, want []seqSample) {
	tb.Helper()
	mk := func(f *Frame, seq uint64) *Frame { f.Seq = seq; return f }
	frames := []*Frame{
		mk(NewOpen(1, TargetDial, "example.com:80", []byte("GET /")), 1),
		mk(NewEmpty(TypeOpenOK, 1), 2),
		mk(dataFrame(tb, TypeData, 1, "some bytes"), 3),
		NewAck(Ack{Received: 3, CarrierBytes: 99}), // per carrier: unsequenced
		mk(NewCredit(1, 4096), 5),                  // sequence numbers need not be contiguous on one carrier
		NewPing(TypePing, 7),
		mk(NewEmpty(TypeFin, 1), 6),
		mk(NewReason(TypeRst, 3, CodeCancelled, "gone"), 1<<40),
		mk(dataFrame(tb, TypeData, 9, ""), math.MaxUint64),
		NewReason(TypeGoAway, 0, CodeShutdown, "bye"),
	}
	for _, f := range frames {
		want = append(want, seqSample{Type: f.Type, Stream: f.Stream, Seq: f.Seq, Payload: append([]byte(nil), f.Bytes()...)})
		wire = append(wire, encodeFrame(tb, f, Version)...)
	}
	return wire, want
}

func TestReadSeqFrames(t *testing.T) {
	wire, want := seqSamples(t)
	for _, tc := range wireReaders(wire) {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(tc.make(), tc.size)
			r.Version, r.Seq = Version, true
			off := 0
			for i, w := range want {
				f, err := r.ReadFrame()
				wantErr(t, "ReadFrame", err, nil)
				got := seqSample{Type: f.Type, Stream: f.Stream, Seq: f.Seq, Payload: append([]byte(nil), f.Bytes()...)}
				flagged := f.Flags&FlagSeq != 0
				n := f.WireLen()
				re := AppendFrame(nil, f, Version)
				f.Release()
				if got.Type != w.Type || got.Stream != w.Stream || got.Seq != w.Seq || !bytes.Equal(got.Payload, w.Payload) {
					t.Fatalf("frame %d = %+v, want %+v", i, got, w)
				}
				if flagged != (w.Seq != 0) {
					t.Fatalf("frame %d: FlagSeq %v with seq %d", i, flagged, w.Seq)
				}
				if !bytes.Equal(re, wire[off:off+n]) {
					t.Fatalf("frame %d re-encodes to % x, read from % x", i, re, wire[off:off+n])
				}
				off += n
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("after the frames: %v, want io.EOF", err)
			}
			if off != len(wire) {
				t.Fatalf("WireLen adds up to %d, the wire is %d", off, len(wire))
			}
		})
	}
}

// TestReadUnsequencedWithSeq: a Reader that allows sequenced frames still
// reads the unsequenced ones of a stream that has none.
func TestReadUnsequencedWithSeq(t *testing.T) {
	wire, want := sampleFrames(t)
	checkPool(t)
	r := NewReader(bytes.NewReader(wire), 64)
	r.Version, r.Seq = Version, true
	wantErr(t, "readAll", readAll(t, r, want), io.EOF)
}

// TestReadSeqHelloFlagIgnored: in the handshake the flags of a HELLO mean
// nothing, FlagSeq included: no sequence number is read.
func TestReadSeqHelloFlagIgnored(t *testing.T) {
	checkPool(t)
	f := NewHello(&Hello{MinVersion: 1, MaxVersion: 1, Role: RoleDialer, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow})
	f.Flags = FlagSeq
	wire := encodeFrame(t, f, Version)
	for _, seq := range []bool{false, true} {
		r := NewReader(bytes.NewReader(wire), 64)
		r.Seq = seq
		g, err := r.ReadFrame()
		wantErr(t, "ReadFrame", err, nil)
		if g.Type != TypeHello || g.Seq != 0 {
			g.Release()
			t.Fatalf("Seq %v: read %v seq %d", seq, g, g.Seq)
		}
		_, err = ParseHello(g.Bytes())
		g.Release()
		wantErr(t, "ParseHello", err, nil)
		if _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("Seq %v: after the HELLO: %v, want io.EOF", seq, err)
		}
	}
}

func TestReadSeqFrameErrors(t *testing.T) {
	hdr := func(h Header) []byte {
		b := make([]byte, HeaderLen)
		PutHeader(b, h)
		return b
	}
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	good := encodeFrame(t, seqFrame(t, 7, "abc"), Version)
	seqHdr := hdr(Header{Version: Version, Type: TypeData, Flags: FlagSeq, Stream: 1, Length: 3})
	type test struct {
		name     string
		r        io.Reader
		seq      bool // Reader.Seq
		frames   int  // good frames before the error
		want     error
		notTrunc bool // the error must not be ErrTruncated
	}
	tests := []test{
		{name: "good", r: bytes.NewReader(catBytes(good, good)), seq: true, frames: 2, want: io.EOF},
		{name: "FlagSeq without CapSeq", r: bytes.NewReader(good), want: ErrMalformed, notTrunc: true},
		{name: "FlagSeq without CapSeq after a frame",
			r:    bytes.NewReader(catBytes(encodeFrame(t, dataFrame(t, TypeData, 1, "abc"), Version), good)),
			want: ErrMalformed, frames: 1, notTrunc: true},
		{name: "FlagSeq on an ACK without CapSeq", r: bytes.NewReader(catBytes(hdr(Header{Version: Version, Type: TypeAck, Flags: FlagSeq, Length: 0}), u64(1))),
			want: ErrMalformed, notTrunc: true},
		{name: "seq 0", r: bytes.NewReader(catBytes(seqHdr, u64(0), []byte("abc"))), seq: true, want: ErrMalformed, notTrunc: true},
		{name: "seq 0 after a frame", r: bytes.NewReader(catBytes(good, seqHdr, u64(0), []byte("abc"))), seq: true, frames: 1, want: ErrMalformed, notTrunc: true},
		{name: "seq 0 empty", r: bytes.NewReader(catBytes(hdr(Header{Version: Version, Type: TypeFin, Flags: FlagSeq, Stream: 1}), u64(0))), seq: true, want: ErrMalformed},
		{name: "payload cut short after seq", r: bytes.NewReader(catBytes(seqHdr, u64(1), []byte("ab"))), seq: true, want: ErrTruncated},
		{name: "payload missing after seq", r: bytes.NewReader(catBytes(seqHdr, u64(1))), seq: true, want: ErrTruncated},
		{name: "carrier error in seq", r: io.MultiReader(bytes.NewReader(catBytes(seqHdr, u64(1)[:3])), iotest.ErrReader(errCarrier)),
			seq: true, want: errCarrier, notTrunc: true},
		{name: "carrier error right after the header", r: io.MultiReader(bytes.NewReader(seqHdr), iotest.ErrReader(errCarrier)),
			seq: true, want: errCarrier, notTrunc: true},
		{name: "carrier error in payload after seq", r: io.MultiReader(bytes.NewReader(catBytes(seqHdr, u64(1), []byte("a"))), iotest.ErrReader(errCarrier)),
			seq: true, want: errCarrier, notTrunc: true},
	}
	for k := range SeqLen {
		tests = append(tests, test{name: fmt.Sprintf("seq cut at %d bytes", k), r: bytes.NewReader(catBytes(good, seqHdr, u64(9)[:k])), seq: true, frames: 1, want: ErrTruncated})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(tc.r, 16)
			r.Version, r.Seq = Version, tc.seq
			var err error
			for i := 0; ; i++ {
				var f *Frame
				if f, err = r.ReadFrame(); err != nil {
					if i != tc.frames {
						t.Fatalf("error after %d frames, want %d: %v", i, tc.frames, err)
					}
					break
				}
				f.Release()
			}
			wantErr(t, "ReadFrame", err, tc.want)
			if tc.want != io.EOF && tc.want != errCarrier {
				wantErr(t, "ReadFrame", err, ErrProtocol)
			}
			if tc.notTrunc && errors.Is(err, ErrTruncated) {
				t.Fatalf("reported as truncation: %v", err)
			}
		})
	}
}

// FuzzReadSeqFrames reads arbitrary bytes with a Reader that allows
// sequenced frames. It must never panic; every frame must re-encode to the
// bytes it was read from, with a non-zero sequence number exactly when
// FlagSeq is set; the reading must end with io.EOF exactly at the end of
// the input and with a protocol error otherwise; and every buffer must come
// back to the pool.
func FuzzReadSeqFrames(f *testing.F) {
	wire, _ := seqSamples(f)
	f.Add(wire)
	f.Add(wire[:HeaderLen+3])
	f.Add(encodeFrame(f, seqFrame(f, 1, "x"), Version))
	f.Add(encodeFrame(f, seqFrame(f, 2, ""), Version))
	var zero [MaxHeaderLen]byte
	PutHeader(zero[:], Header{Version: Version, Type: TypeData, Flags: FlagSeq, Stream: 1})
	f.Add(zero[:])
	plain, _ := sampleFrames(f)
	f.Add(plain)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPool(t)
		r := NewReader(bytes.NewReader(data), 16)
		r.Version, r.Seq = Version, true
		off := 0
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				if off == len(data) {
					if err != io.EOF {
						t.Fatalf("at the end of the input: %v, want io.EOF", err)
					}
				} else if !errors.Is(err, ErrProtocol) {
					t.Fatalf("%d bytes left: %v, want a protocol error", len(data)-off, err)
				}
				return
			}
			n := fr.WireLen()
			flagged := fr.Flags&FlagSeq != 0
			seq := fr.Seq
			var re []byte
			if off+n <= len(data) {
				re = AppendFrame(nil, fr, Version)
			}
			fr.Release()
			if off+n > len(data) {
				t.Fatalf("frame of %d bytes runs past the input", n)
			}
			if flagged != (seq != 0) {
				t.Fatalf("FlagSeq %v with sequence number %d", flagged, seq)
			}
			if !bytes.Equal(re, data[off:off+n]) {
				t.Fatalf("re-encoded % x, read from % x", re, data[off:off+n])
			}
			off += n
		}
	})
}

func TestFrameRetainRelease(t *testing.T) {
	for owners := 1; owners <= 4; owners++ {
		checkPool(t)
		start := PoolOutstanding()
		f := seqFrame(t, 1, "payload")
		for range owners - 1 {
			f.Retain()
		}
		for i := range owners - 1 {
			f.Release()
			if f.Payload == nil || string(f.Bytes()) != "payload" {
				t.Fatalf("%d owners: payload gone after %d releases", owners, i+1)
			}
			if got := PoolOutstanding(); got != start+1 {
				t.Fatalf("%d owners: %d outstanding after %d releases, want %d", owners, got, i+1, start+1)
			}
		}
		f.Release()
		if f.Payload != nil {
			t.Fatalf("%d owners: the last Release kept the payload", owners)
		}
		if got := PoolOutstanding(); got != start {
			t.Fatalf("%d owners: %d outstanding after the last release, want %d", owners, got, start)
		}
		f.Release() // one too many: harmless
		if got := PoolOutstanding(); got != start {
			t.Fatalf("%d owners: an extra Release put a buffer back twice (%d, want %d)", owners, got, start)
		}
	}
	// Retain and Release without a payload do nothing.
	e := NewEmpty(TypeFin, 1)
	e.Retain()
	e.Release()
	e.Release()
}

// TestFrameReleaseConcurrent has several owners release each frame at the
// same moment (they meet before each frame, so their releases collide);
// every payload must go back exactly once. Run it with -race.
func TestFrameReleaseConcurrent(t *testing.T) {
	checkPool(t)
	const frames, owners = 20000, 2
	start := PoolOutstanding()
	fs := make([]*Frame, frames)
	for i := range fs {
		fs[i] = seqFrame(t, uint64(i+1), "x")
		for range owners - 1 {
			fs[i].Retain()
		}
	}
	if got := PoolOutstanding(); got != start+frames {
		t.Fatalf("%d outstanding, want %d", got, start+frames)
	}
	var (
		wg      sync.WaitGroup
		arrived atomic.Int64
	)
	for range owners {
		wg.Go(func() {
			for i, f := range fs {
				_ = f.Len() // an owner may read the payload until it lets go
				// Meet the other owners, then release together.
				arrived.Add(1)
				for spin := 0; arrived.Load() < int64(owners*(i+1)); spin++ {
					if spin > 1000 {
						runtime.Gosched()
					}
				}
				f.Release()
			}
		})
	}
	wg.Wait()
	if got := PoolOutstanding(); got != start {
		t.Fatalf("%d outstanding after every owner released, want %d", got, start)
	}
	for i, f := range fs {
		if f.Payload != nil {
			t.Fatalf("frame %d kept its payload", i)
		}
	}
}

// ---- Reorder ----
