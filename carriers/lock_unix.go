//go:build unix

package carriers

import (
	"errors"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive lock on fd (flock), retrying when a signal
// interrupts; closing the file lets it go.
func lockFile(fd uintptr) error {
	for {
		err := unix.Flock(int(fd), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
