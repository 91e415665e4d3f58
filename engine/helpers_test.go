package engine

import (
	"bytes"
	"errors"
	"testing"
)

// These tests never run in parallel: checkPool compares the package-wide
// pool counters before and after a test.

// checkPool records PoolOutstanding now and fails tb at cleanup unless it is
// back to that value, so a test that forgets to release a buffer fails.
func checkPool(tb testing.TB) {
	tb.Helper()
	start := PoolOutstanding()
	tb.Cleanup(func() {
		if got := PoolOutstanding(); got != start {
			tb.Errorf("pool: %d buffers outstanding at the end, %d at the start (leak of %d)", got, start, got-start)
		}
	})
}

// wantErr fails tb unless err matches want with errors.Is; a nil want means
// no error is expected.
func wantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	switch {
	case want == nil && err != nil:
		tb.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && err == nil:
		tb.Fatalf("%s: no error, want %v", what, want)
	case want != nil && !errors.Is(err, want):
		tb.Fatalf("%s: error %v, want one matching %v", what, err, want)
	}
}

// release releases every frame in fs.
func release(fs []*Frame) {
	for _, f := range fs {
		f.Release()
	}
}

// dataFrame builds a DATA (or FIN, with no payload) frame whose payload is
// the bytes of tag, so a test can tell frames apart after scheduling.
func dataFrame(tb testing.TB, t Type, stream uint32, tag string) *Frame {
	tb.Helper()
	f := &Frame{Type: t, Stream: stream}
	if tag != "" {
		f.Payload = GetBuffer(len(tag))
		copy(f.Payload.B, tag)
	}
	return f
}

// encodeFrame returns the wire bytes of f with version v and releases f.
func encodeFrame(tb testing.TB, f *Frame, v uint8) []byte {
	tb.Helper()
	b := AppendFrame(nil, f, v)
	f.Release()
	return b
}

func catBytes(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
