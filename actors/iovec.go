//go:build linux || freebsd || netbsd || dragonfly

package actors

import "golang.org/x/sys/unix"

// iovecs fills vs (grown as needed) with bs.
func iovecs(vs []unix.Iovec, bs [][]byte) []unix.Iovec {
	vs = vs[:0]
	for _, b := range bs {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		vs = append(vs, v)
	}
	return vs
}
