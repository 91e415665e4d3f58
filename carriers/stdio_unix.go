//go:build unix

package carriers

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

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
