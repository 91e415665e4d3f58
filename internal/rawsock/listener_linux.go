//go:build linux

package rawsock

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Listener accepts a *net.TCPListener's connections with raw accept4
// calls, as Conns tuned as Go's net tunes its own (tune). It waits for
// connections in Go's poller through a duplicate of the listener's
// descriptor (net's listeners give raw calls Control only), so it must be
// closed itself, not only the listener it wraps: Close closes both, and
// ends Accept with an error that is net.ErrClosed.
type Listener struct {
	ln     *net.TCPListener // not embedded: its SetDeadline, File and Close would act on the other descriptor
	dup    *os.File
	raw    syscall.RawConn
	closed atomic.Bool
	// the accept's callback (made once) and its results, one Accept at
	// a time (acceptMu)
	acceptMu sync.Mutex
	acceptFn func(fd uintptr) bool
	nfd      int
	rsa      unix.RawSockaddrAny
	err      error
}

// NewListener wraps ln, which must be a *net.TCPListener (ErrNotTCP
// otherwise).
func NewListener(ln net.Listener) (*Listener, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, ErrNotTCP
	}
	dup, err := tl.File() // non-blocking, in Go's poller
	if err != nil {
		return nil, err
	}
	raw, err := dup.SyscallConn()
	if err != nil {
		dup.Close()
		return nil, err
	}
	l := &Listener{ln: tl, dup: dup, raw: raw}
	l.acceptFn = func(fd uintptr) bool {
		l.nfd, l.err = accept(int(fd), &l.rsa)
		return l.err != unix.EAGAIN // none waiting: wait for the listener
	}
	return l, nil
}

func accept(fd int, rsa *unix.RawSockaddrAny) (int, error) {
	for {
		l := uint32(unsafe.Sizeof(*rsa))
		r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(rsa)),
			uintptr(unsafe.Pointer(&l)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR, unix.ECONNABORTED: // as Go's net: the next one
			continue
		}
		return -1, e
	}
}

// Accept waits for and returns the next connection, a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	l.acceptMu.Lock()
	defer l.acceptMu.Unlock()
	if err := l.raw.Read(l.acceptFn); err != nil {
		if l.closed.Load() {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: err}
	}
	nfd, err := l.nfd, l.err
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", err)}
	}
	raddr := tcpAddr(&l.rsa)
	loopback := false
	if ta, ok := raddr.(*net.TCPAddr); ok {
		loopback = ta.IP.IsLoopback()
	}
	// Best effort, as Go's net: a socket that refuses an option (an
	// MPTCP one on an older kernel refuses the keepalive settings) is a
	// connection all the same, not an accept error to back off from.
	_ = tune(nfd, loopback)
	return New(nfd, raddr), nil
}

// Close closes the listener and its duplicate: the socket stops
// listening, and Accept returns.
func (l *Listener) Close() error {
	l.closed.Store(true)
	err := l.ln.Close()
	l.dup.Close()
	return err
}

// Addr is the listener's address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// SetDeadline sets the deadline of Accept, those waiting included.
func (l *Listener) SetDeadline(t time.Time) error { return l.dup.SetDeadline(t) }
