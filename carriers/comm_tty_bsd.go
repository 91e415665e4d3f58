//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package carriers

import "golang.org/x/sys/unix"

// The termios ioctls of the BSDs and macOS (tcgetattr and tcsetattr with
// TCSANOW).
const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
)
