package carriers

import (
	"net"
	"os"
)

// Stdio is a carrier that reads in and writes out: `sockmux stdio` serves
// one link on os.Stdin and os.Stdout with it. The conn owns in and out:
// Close closes both, so the peer reads EOF.
//
// Deadlines, and Close unblocking a pending Read or Write, need files the
// runtime can poll. A pipe or socket that Go holds in blocking mode (as it
// holds os.Stdin and os.Stdout) is duplicated and the duplicate put in
// non-blocking mode, which is restored on Close; a tty or a regular file is
// used as it is, without deadlines. Writing to the duplicate of a closed
// pipe returns EPIPE instead of killing the process with SIGPIPE, as a
// write on file descriptor 1 would. (On Windows the files are used as they
// are: without deadlines.)
func Stdio(in, out *os.File) net.Conn {
	r, rdone := pollable(in)
	w, wdone := pollable(out)
	c := newFileConn(r, w, fileAddr{"stdio", in.Name()}, fileAddr{"stdio", out.Name()})
	c.cleanup = func() error {
		err := rdone()
		if e := wdone(); err == nil {
			err = e
		}
		return err
	}
	return c
}
