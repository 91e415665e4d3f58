package actors

// Socket reads and writes below the Stream actor: pooled buffers filled
// and written with one readv or writev, without waiting, and the ends of a
// socket (half-close, reset).

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/sockmux/sockmux/engine"
)

// maxIovecs is the most buffers one writev takes (IOV_MAX on Linux); the
// rest wait for the next.
const maxIovecs = 1024

// writeFD writes bufs to fd without waiting and returns what it wrote: the
// bytes, and how many of bufs it wrote whole (an empty datagram counts,
// though it has no bytes); a full socket is no error.
func writeFD(fd int, bufs []*engine.Buffer, datagram bool) (int, int, error) {
	if datagram || len(bufs) == 1 {
		total := 0
		for k, b := range bufs {
			n, err := sysWrite(fd, b.B)
			if err == syscall.EAGAIN || err == syscall.EINTR {
				return total, k, nil
			}
			if err != nil {
				return total, k, err
			}
			total += n
			if n < len(b.B) {
				return total, k, nil
			}
		}
		return total, len(bufs), nil
	}
	var spare [8][]byte
	iovs := spare[:0]
	for _, b := range bufs[:min(len(bufs), maxIovecs)] {
		iovs = append(iovs, b.B)
	}
	n, err := sysWritev(fd, iovs)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	k := 0
	for left := n; k < len(bufs) && left >= len(bufs[k].B) && (left > 0 || len(bufs[k].B) == 0); k++ {
		left -= len(bufs[k].B)
	}
	return n, k, nil
}

// shutWrite shuts conn's write side, or closes it when it has no half.
func shutWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		conn.Close()
	}
}

// Resetter is a local connection that says "cut short" its own way: a
// stream reset by the peer (or by this side) calls Reset instead of
// Close, so the client can tell a truncated stream from a clean end. A
// TCP socket needs none: it is closed with SO_LINGER 0, a TCP RST.
type Resetter interface {
	net.Conn
	Reset()
}

// resetConn closes conn abortively: a TCP socket sends RST, so the client
// at the other end sees its stream cut short as a reset and never as a
// clean end (a FIN), even if its write side was already shut. A socket
// with no RST to send (a pipe, a UDP session) is just closed.
func resetConn(conn net.Conn) {
	if r, ok := conn.(Resetter); ok {
		r.Reset()
		return
	}
	if tc, ok := conn.(interface{ SetLinger(int) error }); ok { // *net.TCPConn, *rawsock.Conn
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// sockReader reads a socket into pooled buffers, taking buffers only when
// bytes are there: an idle connection holds none. It uses the socket's raw
// file descriptor where it has one, and a plain Read otherwise.
type sockReader struct {
	conn     net.Conn
	raw      syscall.RawConn
	datagram bool // a UDP socket: a read of no bytes is an empty datagram, not the end
}

func newSockReader(conn net.Conn) *sockReader {
	return &sockReader{conn: conn, raw: rawConn(conn)}
}

// read reads up to max bytes into buffers of at most frame bytes each and
// returns them with the byte count (no buffers, with the error, at the end).
func (r *sockReader) read(max, frame int) ([]*engine.Buffer, int, error) {
	if r.raw == nil {
		b := engine.GetBuffer(min(max, frame))
		n, err := r.conn.Read(b.B)
		if n == 0 && (err != nil || !r.datagram) {
			engine.PutBuffer(b)
			return nil, 0, err
		}
		b.B = b.B[:n]
		return []*engine.Buffer{engine.ShrinkBuffer(b)}, n, err
	}
	return r.rawRead(max, frame, true)
}

// peek returns what is already waiting, up to max bytes in one buffer,
// without waiting (nil for nothing).
func (r *sockReader) peek(max int) (*engine.Buffer, error) {
	if r.raw == nil {
		return nil, nil
	}
	bufs, _, err := r.rawRead(max, max, false)
	if len(bufs) == 0 {
		return nil, err
	}
	return bufs[0], err
}

// rawRead reads up to max bytes into buffers of at most frame bytes each,
// with one read or readv; without wait it returns no bytes and no error
// when there is nothing to read.
func (r *sockReader) rawRead(max, frame int, wait bool) ([]*engine.Buffer, int, error) {
	if max <= 0 {
		return nil, 0, nil
	}
	var (
		bufs []*engine.Buffer
		n    int
		rerr error
	)
	err := r.raw.Read(func(fd uintptr) bool {
		bufs, n, rerr = readFD(int(fd), max, frame, nil, r.datagram)
		if rerr == syscall.EAGAIN || rerr == syscall.EINTR {
			// Nothing there: no buffer is held while waiting. A
			// try is done; a read waits for the socket.
			rerr = nil
			return !wait
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return bufs, n, err
}

// readable says whether the socket has something to say (bytes, its end
// or an error) by peeking at one byte, which stays for the read. A socket
// error is returned: the kernel reports it once, to the peek, and the
// read after it would see a clean end instead of the reset.
func readable(fd uintptr) (bool, error) {
	err := sysPeek(int(fd))
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return false, nil
	}
	return true, err
}

// readFD reads fd, without waiting, into pooled buffers of at most frame
// bytes each, up to max bytes, with one read or readv; it returns the
// buffers the bytes reached (the last maybe partly full) and their count,
// or no buffer and the error (EAGAIN: nothing there; io.EOF: the end).
// The caller owns the buffers it gets, appended to dst (whose room it may
// reuse). On a datagram socket a read of no bytes is an empty datagram:
// one empty buffer.
func readFD(fd, max, frame int, dst []*engine.Buffer, datagram bool) ([]*engine.Buffer, int, error) {
	var spare [readFrames][]byte
	iovs := spare[:0]
	bufs := dst[:0]
	for left := max; left > 0; left -= frame {
		b := engine.GetBuffer(min(left, frame))
		bufs = append(bufs, b)
		iovs = append(iovs, b.B)
	}
	var (
		n   int
		err error
	)
	if len(iovs) == 1 {
		n, err = sysRead(fd, iovs[0])
	} else {
		n, err = sysReadv(fd, iovs)
	}
	clear(spare[:])
	if n == 0 && err == nil && datagram {
		putAll(bufs[1:])
		bufs[0].B = bufs[0].B[:0]
		return bufs[:1], 0, nil
	}
	if err != nil || n <= 0 {
		putAll(bufs)
		if err == nil {
			err = io.EOF // a read of 0 bytes
		}
		return nil, 0, err
	}
	k := 0
	for left := n; left > 0; k++ {
		m := min(left, len(bufs[k].B))
		bufs[k].B = bufs[k].B[:m]
		left -= m
	}
	putAll(bufs[k:])
	bufs = bufs[:k]
	bufs[k-1] = engine.ShrinkBuffer(bufs[k-1])
	return bufs, n, nil
}

func putAll(bufs []*engine.Buffer) {
	for i, b := range bufs {
		engine.PutBuffer(b)
		bufs[i] = nil
	}
}

// rawSource reads a carrier socket with the data path's system calls
// (sysRead) where the socket has a file descriptor, waiting through Go's
// poller as a net.Conn read does; nil otherwise (TLS, pipes: their own
// Read).
type rawSource struct {
	conn net.Conn
	raw  syscall.RawConn
	// the read's callback (made once) and its buffer and results
	readFn func(fd uintptr) bool
	p      []byte
	n      int
	err    error
}

func newRawSource(conn net.Conn) *rawSource {
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		if !isRawSock(conn) {
			return nil
		}
	}
	raw := rawConn(conn)
	if raw == nil {
		return nil
	}
	s := &rawSource{conn: conn, raw: raw}
	s.readFn = func(fd uintptr) bool {
		s.n, s.err = sysRead(int(fd), s.p)
		return s.err != syscall.EAGAIN // nothing there: wait for the socket
	}
	return s
}

func (s *rawSource) Read(p []byte) (int, error) {
	s.p, s.n, s.err = p, 0, nil
	err := s.raw.Read(s.readFn)
	n, rerr := s.n, s.err
	s.p, s.err = nil, nil
	switch {
	case err != nil:
		return 0, err // closed, or past a deadline
	case rerr == syscall.EINTR:
		return 0, nil // bufio reads again
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: s.conn.LocalAddr().Network(), Source: s.conn.LocalAddr(),
			Addr: s.conn.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}
