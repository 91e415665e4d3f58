//go:build !unix

package carriers

// oNonblock: no FIFOs here to open without blocking.
const oNonblock = 0

// fifosAvailable: a fifo: carrier is a pair of POSIX named pipes, which
// this OS does not have (a Windows named pipe is a different thing: a
// local socket, which comm: covers with a unix socket).
func fifosAvailable() error { return unsupported("fifo carrier (POSIX named pipes)") }

func mkfifo(string) error { return fifosAvailable() }

func openBothEnds(string) (func(), error) { return nil, fifosAvailable() }
