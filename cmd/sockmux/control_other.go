//go:build !unix

package main

import "net"

// listenPrivate: no umask here; controlAvailable keeps the control socket
// off on such an OS anyway (no peer credentials).
func listenPrivate(path string) (net.Listener, error) { return net.Listen("unix", path) }
