package carriers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
)

// A FIFO pair is opened in an order that lets a listener tell its last
// peer from its next one. The listener, before it opens the pair again,
// waits until nothing holds the pipe it reads open for writing: the peer
// of the connection it closed reads EOF (nothing writes to it any more)
// and lets go. The dialler opens the pipe it reads first and the one it
// writes only once that open is done, which needs the listener to be past
// that wait: so a dialler waiting for the listener never holds the
// listener's read pipe open, and the wait cannot mistake it for the old
// peer. The listener opens its two ends at once.
//
// Two diallers naming the same pair in opposite orders would each wait
// for the other to open for writing: a FIFO pair needs one listening and
// one dialling peer.

// fifoDialer opens a pair of named pipes, reading one and writing the
// other; the listening peer names them in the opposite order.
type fifoDialer struct{ rpath, wpath string }

// Dial opens the read pipe, then the write pipe; ctx ends a wait for the
// listener.
func (d *fifoDialer) Dial(ctx context.Context) (net.Conn, error) {
	if err := ensureFifos(d.rpath, d.wpath); err != nil {
		return nil, err
	}
	r, err := openFifo(ctx, d.rpath, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	w, err := openFifo(ctx, d.wpath, os.O_WRONLY)
	if err != nil {
		r.Close()
		return nil, err
	}
	return newFifoConn(r, w, d.rpath, d.wpath), nil
}

func (d *fifoDialer) String() string { return "fifo:" + d.rpath + "," + d.wpath }

// listenFifo makes the pair when absent; its Accept opens them.
func listenFifo(rpath, wpath string) (net.Listener, error) {
	if err := ensureFifos(rpath, wpath); err != nil {
		return nil, err
	}
	return newSerialListener(fileAddr{"fifo", rpath + "," + wpath}, func(ctx context.Context) (*fileConn, error) {
		if err := ensureFifos(rpath, wpath); err != nil {
			return nil, err
		}
		if err := waitNoWriter(ctx, rpath); err != nil {
			return nil, err
		}
		return openFifoPair(ctx, rpath, wpath)
	}), nil
}

func newFifoConn(r, w *os.File, rpath, wpath string) *fileConn {
	return newFileConn(r, w, fileAddr{"fifo", rpath + "," + wpath}, fileAddr{"fifo", wpath + "," + rpath})
}

// ensureFifos makes each path a named pipe (mode 0600) when it does not
// exist, and fails when it exists and is something else.
func ensureFifos(paths ...string) error {
	if err := fifosAvailable(); err != nil {
		return err
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := mkfifo(p); err != nil {
				return &fs.PathError{Op: "mkfifo", Path: p, Err: err}
			}
		case err != nil:
			return err
		case st.Mode()&fs.ModeNamedPipe == 0:
			return fmt.Errorf("fifo carrier: %s is not a named pipe (%v)", p, st.Mode().Type())
		}
	}
	return nil
}

// waitNoWriter returns once nothing holds path open for writing, reading
// and dropping what is still written to it: the previous peer's last
// frames. Opening for reading without blocking never waits for a writer.
func waitNoWriter(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	buf := make([]byte, 4096)
	for {
		_, err := f.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// openFifo opens path with flag (O_RDONLY or O_WRONLY), which blocks until
// the other end is opened. When ctx ends first, the pending open is
// released by opening the other end ourselves (O_RDWR|O_NONBLOCK never
// blocks on a FIFO), and closed.
func openFifo(ctx context.Context, path string, flag int) (*os.File, error) {
	ch := startOpen(path, flag)
	select {
	case o := <-ch:
		return o.f, o.err
	case <-ctx.Done():
		closeAll(release(path, ch).f)
		return nil, ctx.Err()
	}
}

// openFifoPair opens rpath for reading and wpath for writing at once, so
// that it meets a peer opening them in either order; ctx ends the wait as
// in openFifo.
func openFifoPair(ctx context.Context, rpath, wpath string) (*fileConn, error) {
	rc, wc := startOpen(rpath, os.O_RDONLY), startOpen(wpath, os.O_WRONLY)
	var r, w opened
	for rc != nil || wc != nil {
		select {
		case r = <-rc:
			rc = nil
		case w = <-wc:
			wc = nil
		case <-ctx.Done():
			if rc != nil {
				r = release(rpath, rc)
			}
			if wc != nil {
				w = release(wpath, wc)
			}
			closeAll(r.f, w.f)
			return nil, ctx.Err()
		}
	}
	if r.err != nil || w.err != nil {
		closeAll(r.f, w.f)
		return nil, errors.Join(r.err, w.err)
	}
	return newFifoConn(r.f, w.f, rpath, wpath), nil
}

// startOpen opens path in a goroutine of its own.
func startOpen(path string, flag int) chan opened {
	ch := make(chan opened, 1)
	go func() {
		f, err := os.OpenFile(path, flag, 0) // os adds O_CLOEXEC
		ch <- opened{f, err}
	}()
	return ch
}

// opened is the outcome of one open.
type opened struct {
	f   *os.File
	err error
}

// release unblocks the open of path pending on ch and waits for it. When
// path cannot be opened any more (it was removed), the pending open cannot
// be released: it is left to finish in the background, and what it opens
// is closed then.
func release(path string, ch chan opened) opened {
	done, err := openBothEnds(path)
	if err != nil {
		go func() { closeAll((<-ch).f) }()
		return opened{}
	}
	v := <-ch
	done()
	return v
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}
