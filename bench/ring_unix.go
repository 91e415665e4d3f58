//go:build unix

package bench

import "syscall"

// mapRing maps an emulator pipe's ring of size bytes (a multiple of the
// page size) outside Go's heap: the garbage collector never scans or moves
// it, and unmapRing gives it back to the OS at once.
func mapRing(size int) ([]byte, error) {
	return syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

func unmapRing(ring []byte) { _ = syscall.Munmap(ring) }
