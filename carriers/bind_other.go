//go:build !linux

package carriers

import (
	"fmt"
	"syscall"
)

// bindToDevice is Linux's SO_BINDTODEVICE; elsewhere give an address.
func bindToDevice(_ syscall.RawConn, iface string) error {
	return fmt.Errorf("%w %q: %w; give one of its addresses", ErrBadBind, iface, unsupported("binding to an interface (SO_BINDTODEVICE)"))
}
