package engine

import (
	"sync"
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

// maxPooled is the largest buffer the last class (those above every size
// class, made for one large payload) keeps; larger ones go to the GC.
const maxPooled = 4 * (DefaultMaxPayload + HeaderLen)

// The pools are sync.Pools of bytebufferpool's ByteBuffer, one per class,
// rather than bytebufferpool.Pool: that one calibrates itself on the sizes
// it is given, in powers of two, and then makes new buffers of the
// calibrated size and drops those above it. A class of 64 KiB plus a header
// calibrates to 128 KiB: its new buffers then belong to the next class up
// and it never refills, so every read allocated 64 KiB (and, for buffers
// put back holding a few bytes, every buffer of the class was dropped).
var (
	classPools [len(classSizes) + 1]sync.Pool
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
	b, _ := classPools[c].Get().(*Buffer)
	if b == nil {
		b = new(Buffer)
	}
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

// PutBuffer returns b to the pool of the largest class its capacity
// serves. b must not be used afterwards.
func PutBuffer(b *Buffer) {
	poolPuts.Add(1)
	c := cap(b.B)
	if c > maxPooled {
		return
	}
	b.B = b.B[:0]
	i := len(classSizes)
	if c <= classSizes[len(classSizes)-1] {
		for i = len(classSizes) - 1; i > 0 && c < classSizes[i]; i-- {
		}
	}
	classPools[i].Put(b)
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
