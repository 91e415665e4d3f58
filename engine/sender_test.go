package engine

import (
	"bytes"
	"testing"
)

// TestSplitFrame: a DATA frame cut for a slow path keeps its first n bytes
// and hands the rest, in a buffer of its own, to a frame of the same
// stream; both go back to the pool.
func TestSplitFrame(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 7000)
	for _, n := range []int{1, MinChunk, len(payload) - 1} {
		f := &Frame{Type: TypeData, Stream: 7, Payload: GetBuffer(len(payload))}
		copy(f.Payload.B, payload)
		rest := splitFrame(f, n)
		if rest.Type != TypeData || rest.Stream != 7 || rest.Seq != 0 {
			t.Fatalf("cut at %d: the rest is %v seq %d", n, rest, rest.Seq)
		}
		if !bytes.Equal(f.Bytes(), payload[:n]) || !bytes.Equal(rest.Bytes(), payload[n:]) {
			t.Fatalf("cut at %d: %d + %d bytes, not the payload's halves", n, f.Len(), rest.Len())
		}
		if &rest.Payload.B[0] == &f.Payload.B[:cap(f.Payload.B)][n] {
			t.Fatalf("cut at %d: the rest shares the frame's buffer", n)
		}
		f.Release()
		rest.Release()
	}
}
