package bench

import "errors"

// ErrUnsupported is a measurement this platform cannot make.
var ErrUnsupported = errors.New("unsupported here")
