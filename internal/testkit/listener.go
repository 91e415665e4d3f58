package testkit

import (
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
)

// FailingListener is a loopback TCP listener whose Accept can be made to
// fail the way a process out of descriptors sees it fail: an
// *net.OpError around an *os.SyscallError around the errno, as
// net.TCPListener returns. Accept returns the queued errors first, at
// once, then real connections.
type FailingListener struct {
	net.Listener
	// Calls receives a value each time Accept returns a queued error, or
	// fails because Always is set (it never blocks Accept: values past
	// its buffer are dropped).
	Calls chan struct{}

	mu     sync.Mutex
	queued []syscall.Errno
	always syscall.Errno
	closed bool
}

// NewFailingListener listens on a loopback port until the test ends.
func NewFailingListener(t testing.TB) *FailingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &FailingListener{Listener: ln, Calls: make(chan struct{}, 1024)}
}

// Fail queues n failures of errno for the next Accepts.
func (l *FailingListener) Fail(n int, errno syscall.Errno) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		l.queued = append(l.queued, errno)
	}
}

// Always makes every Accept fail with errno from now on (0 stops it).
func (l *FailingListener) Always(errno syscall.Errno) {
	l.mu.Lock()
	l.always = errno
	l.mu.Unlock()
}

// Close closes the listener: Accept then fails with net.ErrClosed, as a
// real one does, whatever was queued.
func (l *FailingListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

// Accept fails with the next queued errno, or with Always's, or accepts.
func (l *FailingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	errno := l.always
	if l.closed {
		errno = 0
	}
	if errno == 0 && !l.closed && len(l.queued) > 0 {
		errno, l.queued = l.queued[0], l.queued[1:]
	}
	l.mu.Unlock()
	if errno == 0 {
		return l.Listener.Accept()
	}
	select {
	case l.Calls <- struct{}{}:
	default:
	}
	return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", errno)}
}
