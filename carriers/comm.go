package carriers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// commDialer connects to a unix socket or opens a character device,
// whichever PATH is when dialled.
type commDialer struct{ path string }

func (d *commDialer) Dial(ctx context.Context) (net.Conn, error) {
	st, err := os.Stat(d.path)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Mode()&fs.ModeSocket != 0:
		var nd net.Dialer
		nd.Timeout = DialTimeout
		return nd.DialContext(ctx, "unix", d.path)
	case st.Mode()&fs.ModeCharDevice != 0:
		return openDevice(d.path)
	}
	return nil, fmt.Errorf("comm carrier: %s is neither a unix socket nor a character device (%v)", d.path, st.Mode().Type())
}

func (d *commDialer) String() string { return "comm:" + d.path }

// listenComm listens on a unix socket at path (replacing a stale socket
// file), or serves the character device at path one connection at a time.
func listenComm(path string) (net.Listener, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return net.Listen("unix", path)
	case err != nil:
		return nil, err
	case st.Mode()&fs.ModeSocket != 0:
		if c, err := net.DialTimeout("unix", path, DialTimeout); err == nil {
			c.Close()
			return nil, fmt.Errorf("comm carrier: %s: %w (something listens on it)", path, syscall.EADDRINUSE)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("comm carrier: removing stale socket: %w", err)
		}
		return net.Listen("unix", path)
	case st.Mode()&fs.ModeCharDevice != 0:
		return newSerialListener(fileAddr{"comm", path}, func(context.Context) (*fileConn, error) {
			return openDevice(path)
		}), nil
	}
	return nil, fmt.Errorf("comm carrier: %s is neither a unix socket nor a character device (%v)", path, st.Mode().Type())
}
