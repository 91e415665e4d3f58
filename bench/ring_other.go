//go:build !unix

package bench

// mapRing: no mmap here, so the ring is an ordinary slice, which the
// garbage collector frees once the pipe is gone.
func mapRing(size int) ([]byte, error) { return make([]byte, size), nil }

func unmapRing([]byte) {}
