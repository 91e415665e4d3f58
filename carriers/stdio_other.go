//go:build !unix

package carriers

import "os"

// pollable returns f as it is: a duplicate in non-blocking mode is a unix
// thing. Without it a pending Read or Write on a file the runtime does not
// poll is not unblocked by a deadline.
func pollable(f *os.File) (*os.File, func() error) { return f, func() error { return nil } }
