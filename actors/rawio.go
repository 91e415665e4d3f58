package actors

import (
	"net"
	"sync/atomic"
	"syscall"
)

// rawConn returns conn's descriptor, for the data path's own system calls
// on it (sysio_*.go: non-blocking reads, readv and writev into pooled
// buffers, on the goroutine a message arrived on), or nil: where this OS
// has none of those calls (rawIO false: Windows), where conn has no
// descriptor (TLS, a pipe, a WebSocket), or when a test asked for the
// portable path. A stream or carrier with nil takes the portable path: a
// goroutine of its own blocked in conn.Read, and conn.Write.
func rawConn(conn net.Conn) syscall.RawConn {
	if !rawIO || portableIO.Load() {
		return nil
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// portableIO, set, gives every connection made after it the portable
// path even where raw I/O is there: tests set it to run, on Linux, the
// path Windows runs.
var portableIO atomic.Bool
