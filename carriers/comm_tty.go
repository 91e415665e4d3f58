//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package carriers

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

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
		old, terr = unix.IoctlGetTermios(int(fd), ioctlGetTermios)
		if terr != nil {
			old, terr = nil, nil // not a tty: used as it is
			return
		}
		t := *old
		makeRaw(&t)
		terr = unix.IoctlSetTermios(int(fd), ioctlSetTermios, &t)
	}); err != nil || terr != nil {
		f.Close()
		return nil, fmt.Errorf("comm carrier: raw mode on %s: %w", path, errors.Join(err, terr))
	}
	if old != nil {
		c.beforeClose = func() {
			_ = raw.Control(func(fd uintptr) { _ = unix.IoctlSetTermios(int(fd), ioctlSetTermios, old) })
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
