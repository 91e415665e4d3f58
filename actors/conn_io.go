package actors

// A stream's socket I/O: the raw reads and writes its reading goroutine
// and its flushes make.

import (
	"syscall"

	"github.com/sockmux/sockmux/engine"
)

// io is the stream's raw I/O state, made on its first use.
func (s *streamActor) io() *streamIO {
	if s.sio == nil {
		s.sio = newStreamIO(s.datagram)
	}
	return s.sio
}

// streamIO holds a stream's non-blocking reads and writes on its socket's
// descriptor, with the callbacks they pass to the socket made once: a
// callback made per call, capturing its results, is an allocation a
// message.
type streamIO struct {
	max, frame int
	room       []*engine.Buffer // the slice reads fill: the caller is done with it by the next read
	bufs       []*engine.Buffer
	n, k       int // bytes, and whole buffers written (write)
	err        error
	readFn     func(fd uintptr) bool

	out      []*engine.Buffer
	datagram bool
	writeFn  func(fd uintptr) bool
}

func newStreamIO(datagram bool) *streamIO {
	o := &streamIO{datagram: datagram}
	o.readFn = func(fd uintptr) bool {
		o.bufs, o.n, o.err = readFD(int(fd), o.max, o.frame, o.room, o.datagram)
		if o.err == syscall.EAGAIN || o.err == syscall.EINTR {
			o.err = nil // nothing there: no buffer is held
		}
		return true // one try: never wait here
	}
	o.writeFn = func(fd uintptr) bool {
		o.n, o.k, o.err = writeFD(int(fd), o.out, o.datagram)
		return true
	}
	return o
}

// read reads up to max bytes into buffers of at most frame bytes each,
// without waiting: no bytes and no error when there is nothing to read.
func (o *streamIO) read(raw syscall.RawConn, max, frame int) ([]*engine.Buffer, int, error) {
	if max <= 0 {
		return nil, 0, nil
	}
	o.max, o.frame = max, frame
	err := raw.Read(o.readFn)
	bufs, n := o.bufs, o.n
	if cap(bufs) > 0 {
		o.room = bufs[:0]
	}
	if err == nil {
		err = o.err
	}
	o.bufs, o.err = nil, nil
	return bufs, n, err
}

// write writes what of bufs the socket takes without waiting: the bytes,
// and how many of bufs went whole.
func (o *streamIO) write(raw syscall.RawConn, bufs []*engine.Buffer) (int, int, error) {
	o.out = bufs
	err := raw.Write(o.writeFn)
	n, k := o.n, o.k
	if err == nil {
		err = o.err
	}
	o.out, o.err = nil, nil
	return n, k, err
}
