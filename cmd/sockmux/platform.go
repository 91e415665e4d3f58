package main

// What the daemon's own features need of the OS, and the error of one
// that this OS cannot give (the carriers say theirs: carriers.ErrUnsupported).

import (
	"errors"
	"fmt"
	"runtime"
)

// unsupported is errors.ErrUnsupported naming feature and this OS.
func unsupported(feature string) error {
	return fmt.Errorf("%s is not available on %s: %w", feature, runtime.GOOS, errors.ErrUnsupported)
}

// controlAvailable says whether this OS can have the control socket: it
// answers only its own user, which it tells by the peer's credentials.
func controlAvailable() error {
	if !havePeerCred {
		return unsupported("the control socket (sockmux status and reload; it tells its clients' user by the unix socket's peer credentials)")
	}
	return nil
}
