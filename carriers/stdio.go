package carriers

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
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
// write on file descriptor 1 would.
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

// pollable returns f, or a non-blocking duplicate of f that the runtime
// polls, and what to do once the returned file is closed.
func pollable(f *os.File) (*os.File, func() error) {
	unchanged := func() error { return nil }
	if f.SetReadDeadline(time.Time{}) == nil {
		return f, unchanged // already in the poller (os.Pipe, os.OpenFile on a FIFO)
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&(fs.ModeNamedPipe|fs.ModeSocket) == 0 {
		return f, unchanged
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return f, unchanged
	}
	dup := -1
	var derr error
	if err := raw.Control(func(fd uintptr) {
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || derr != nil {
		return f, unchanged
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return f, unchanged
	}
	nf := os.NewFile(uintptr(dup), f.Name()) // non-blocking: os polls it
	return nf, func() error {
		// The file description is shared with f and with whoever gave it
		// to us: give it back in blocking mode.
		var err error
		if e := raw.Control(func(fd uintptr) { err = unix.SetNonblock(int(fd), false) }); e != nil {
			err = nil // f already closed: nothing to restore through it
		}
		if e := f.Close(); e != nil && !errors.Is(e, fs.ErrClosed) && err == nil {
			err = e
		}
		return err
	}
}
