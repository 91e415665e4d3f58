package engine

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader hands out its chunks in order, each over as many reads as
// the buffers it is given need (never two chunks in one read), and
// records the size of every buffer it was given.
type chunkReader struct {
	chunks [][]byte
	asked  []int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	c.asked = append(c.asked, len(p))
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// mixedFrames are DATA frames of sizes around the read buffer's limits
// (the small array, the direct-read threshold, a large buffer), with
// PINGs between them.
func mixedFrames(tb testing.TB) (wire []byte, want []wantFrame) {
	tb.Helper()
	for i, n := range []int{10, smallRead - HeaderLen, smallRead, 600, 5000, directReadMin + 1, 40000, 3, DefaultMaxPayload} {
		for _, f := range []*Frame{dataFrame(tb, TypeData, uint32(i+1), strings.Repeat(string(rune('a'+i)), n)), NewPing(TypePing, uint64(i))} {
			want = append(want, wantFrame{f.Type, f.Flags, f.Stream, append([]byte(nil), f.Bytes()...)})
			wire = append(wire, encodeFrame(tb, f, Version)...)
		}
	}
	return wire, want
}

// TestReadMixedFrames: frames small and large, through the small array and
// the large buffer, arrive whole and in order however the wire is cut.
func TestReadMixedFrames(t *testing.T) {
	wire, want := mixedFrames(t)
	for _, tc := range []struct {
		name string
		src  io.Reader
	}{
		{"whole", bytes.NewReader(wire)},
		{"half reads", iotest.HalfReader(bytes.NewReader(wire))},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(wire))},
		{"EOF with data", iotest.DataErrReader(bytes.NewReader(wire))},
		{"cut at odd places", &chunkReader{chunks: [][]byte{wire[:7], wire[7:513], wire[513:4000], wire[4000:4001], wire[4001:]}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			r := NewReader(tc.src, 32<<10)
			r.Version = Version
			if err := readAll(t, r, want); err != io.EOF {
				t.Fatalf("after the frames: %v, want io.EOF", err)
			}
			if r.b.large != nil {
				t.Error("the reader still holds its large buffer at the end")
			}
		})
	}
}

// TestReaderQuietHoldsNoBuffer: a burst is read into the large buffer, but
// once a read brought a few bytes and they are decoded, the next read, the
// one that waits while the carrier is quiet, is into the small array: the
// large buffer is back in the pool.
func TestReaderQuietHoldsNoBuffer(t *testing.T) {
	const size = 32 << 10
	var burst []byte
	for i := range 20 {
		burst = append(burst, encodeFrame(t, dataFrame(t, TypeData, 1, strings.Repeat("x", 1000+i)), Version)...)
	}
	ping := encodeFrame(t, NewPing(TypePing, 7), Version)
	src := &chunkReader{chunks: [][]byte{burst, ping, ping}}
	r := NewReader(src, size)
	r.Version = Version
	for i := range 22 {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		f.Release()
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the frames: %v, want io.EOF", err)
	}
	if !containsInt(src.asked, size) {
		t.Errorf("reads were given %v: the burst never went into the large buffer", src.asked)
	}
	if last := src.asked[len(src.asked)-1]; last != smallRead {
		t.Errorf("reads were given %v: the read waiting after the PINGs was given %d bytes, want the small array's %d", src.asked, last, smallRead)
	}
	if r.b.large != nil {
		t.Error("the reader holds its large buffer while quiet")
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
