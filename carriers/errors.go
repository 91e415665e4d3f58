package carriers

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrUnsupported is what a carrier, or a part of one, that cannot work on
// this operating system fails with (a FIFO pair or a serial device on
// Windows, say), wrapped with the feature and the OS. It is
// errors.ErrUnsupported, so either name matches it with errors.Is.
var ErrUnsupported = errors.ErrUnsupported

// unsupported is ErrUnsupported naming feature and this OS.
func unsupported(feature string) error {
	return fmt.Errorf("%s is not available on %s: %w", feature, runtime.GOOS, ErrUnsupported)
}
