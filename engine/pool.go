package engine

import (
	"sync/atomic"

	"github.com/valyala/bytebufferpool"
)

// Buffer is a pooled byte buffer. Exactly one owner holds it at a time:
// putting it in a message hands it over, and the last owner returns it with
// PutBuffer.
type Buffer = bytebufferpool.ByteBuffer

// Size classes keep a 10-byte frame from pinning a 64 KiB buffer: a stalled
// stream may hold its window in bytes, and with classes its memory stays
// within a small factor of that whatever the frame sizes.
var classSizes = [...]int{512, 4 << 10, 16 << 10, DefaultMaxPayload + HeaderLen}

var (
	classPools [len(classSizes) + 1]bytebufferpool.Pool
	poolGets   atomic.Int64
	poolPuts   atomic.Int64
)

func classOf(n int) int {
	for i, s := range classSizes {
		if n <= s {
			return i
		}
	}
	return len(classSizes)
}

// GetBuffer takes a buffer of length n from the pool. Its contents are
// undefined.
func GetBuffer(n int) *Buffer {
	c := classOf(n)
	b := classPools[c].Get()
	if cap(b.B) < n {
		size := n
		if c < len(classSizes) {
			size = classSizes[c]
		}
		b.B = make([]byte, n, size)
	}
	b.B = b.B[:n]
	poolGets.Add(1)
	return b
}

// PutBuffer returns b to the pool. b must not be used afterwards.
func PutBuffer(b *Buffer) {
	poolPuts.Add(1)
	// bytebufferpool calibrates each pool by the length of what it is
	// given and, past 42,000 puts, drops buffers with a capacity above
	// the 95th percentile of those lengths. A class's buffers all have
	// its capacity but come back holding a few bytes (a 64-byte read in a
	// 64 KiB buffer, moved out by ShrinkBuffer): calibrated on those, the
	// pool would drop every buffer of its own class, and each read would
	// allocate 64 KiB afresh. So the pool sees the capacity.
	b.B = b.B[:cap(b.B)]
	classPools[classOf(cap(b.B))].Put(b)
}

// ShrinkBuffer returns a buffer holding b's bytes in the smallest class that
// fits them, returning b to the pool when it moves them. A reader that got a
// few bytes into a large buffer calls it before queueing them.
func ShrinkBuffer(b *Buffer) *Buffer {
	n := len(b.B)
	if c := classOf(n); c < len(classSizes) && classSizes[c] < cap(b.B) {
		s := GetBuffer(n)
		copy(s.B, b.B)
		PutBuffer(b)
		return s
	}
	return b
}

// PoolOutstanding is the number of buffers taken and not yet returned. Tests
// compare it before and after a link's life to find leaks.
func PoolOutstanding() int64 { return poolGets.Load() - poolPuts.Load() }
