//go:build unix

package carriers

import (
	"errors"

	"golang.org/x/sys/unix"
)

// oNonblock opens a FIFO without waiting for its other end.
const oNonblock = unix.O_NONBLOCK

// fifosAvailable: named pipes are POSIX.
func fifosAvailable() error { return nil }

// mkfifo makes path a named pipe (mode 0600); one made meanwhile will do.
func mkfifo(path string) error {
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// openBothEnds opens path for reading and writing, which never blocks on a
// FIFO and so releases an open of either end pending on it; the function
// returned closes it again. A bare descriptor, not an os.File: nothing
// reads or writes it, the runtime need not poll it.
func openBothEnds(path string) (func(), error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}
