// Package rawsock holds a connected stream socket as its raw descriptor: a
// net.Conn whose accept, options, shutdown and close are raw system calls
// (Linux), for the connections sockmux accepts on a forward's listener and
// dials to a local target.
//
// Why: every system call Go's net package makes the usual way
// (syscall.Syscall, not RawSyscall) tells the runtime it may block, and
// when the process was idle that wakes the runtime's sysmon thread, which
// then ticks every 20 µs until the process is idle again. A new connection
// through Go's net costs a dozen such calls on each peer (accept4,
// getsockname, four setsockopts, epoll_ctl, and for a dialled descriptor
// net.FileConn's dup, fcntl, getsockopt, getpeername); a profile of a
// first-response loop had a fifth of the peers' CPU in sysmon
// (BENCHMARKS.md, "A new connection without Go's net"). sockmux's data
// path already reads and writes stream sockets with raw calls on the
// goroutine its link's poller woke; a Conn lets a connection's whole life
// take that path.
//
// A Conn's fast path is its descriptor: SyscallConn's Read, Write and
// Control run the caller's function on it under a read lock, so Close
// (which takes the write lock) never closes a descriptor a call is using.
// Anything that must wait — a blocking Read or Write, a deadline, a raw
// Read whose function asks to wait — first moves the descriptor into an
// *os.File, which puts it in Go's poller; from then on the Conn is that
// file's. The move costs the calls the fast path saved, once, and only on
// connections that wait (a SOCKS handshake, a client that never reads).
//
// Elsewhere than Linux the package offers nothing, and sockmux uses Go's
// net as before.
package rawsock
