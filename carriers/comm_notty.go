//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package carriers

// openDevice: a device as a carrier needs termios (raw mode), which this OS
// does not have as the others do; comm: still takes a unix socket here.
func openDevice(path string) (*fileConn, error) {
	return nil, unsupported("comm carrier: a character device (" + path + ")")
}
