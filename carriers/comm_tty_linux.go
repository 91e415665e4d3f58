package carriers

import "golang.org/x/sys/unix"

// The termios ioctls of Linux (tcgetattr and tcsetattr with TCSANOW).
const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
)
