package carriers

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindToDevice pins a socket to an interface (SO_BINDTODEVICE): its
// packets leave there whatever the routing table says.
func bindToDevice(c syscall.RawConn, iface string) error {
	var serr error
	if err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), iface) }); err != nil {
		return err
	}
	return serr
}
