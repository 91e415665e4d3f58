//go:build !linux

package actors

import "net"

// rawAccepting is Linux's (rawaccept_linux.go); elsewhere a listener
// accepts through Go's net.
func rawAccepting(ln net.Listener) net.Listener { return ln }

// isRawSock is Linux's; elsewhere there are none.
func isRawSock(net.Conn) bool { return false }
