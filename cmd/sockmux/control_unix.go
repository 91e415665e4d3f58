//go:build unix

package main

import (
	"net"
	"syscall"
)

// listenPrivate listens on a unix socket at path made with mode 0600 from
// the start (umask), so that no other user can connect in the moment
// before its chmod.
func listenPrivate(path string) (net.Listener, error) {
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}
