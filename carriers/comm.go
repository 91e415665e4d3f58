package carriers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

// openDevice opens a character device for reading and writing. A tty is
// put in raw mode (8 bits, no echo, no line editing, no translation, no
// flow control, modem lines ignored) and given back its settings on Close.
func openDevice(path string) (*fileConn, error) {
	// O_NONBLOCK: a serial line without carrier would block the open.
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c := newFileConn(f, f, fileAddr{"comm", path}, fileAddr{"comm", path})
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	var old *unix.Termios
	var terr error
	if err := raw.Control(func(fd uintptr) {
		old, terr = unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if terr != nil {
			old, terr = nil, nil // not a tty: used as it is
			return
		}
		t := *old
		makeRaw(&t)
		terr = unix.IoctlSetTermios(int(fd), unix.TCSETS, &t)
	}); err != nil || terr != nil {
		f.Close()
		return nil, fmt.Errorf("comm carrier: raw mode on %s: %w", path, errors.Join(err, terr))
	}
	if old != nil {
		c.beforeClose = func() {
			_ = raw.Control(func(fd uintptr) { _ = unix.IoctlSetTermios(int(fd), unix.TCSETS, old) })
		}
	}
	return c, nil
}

// makeRaw is cfmakeraw(3), plus CLOCAL so that modem lines are ignored.
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CRTSCTS
	t.Cflag |= unix.CS8 | unix.CLOCAL | unix.CREAD
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}
