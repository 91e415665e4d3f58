package actors

import (
	"os"
	"sync"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/sys/unix"
)

// poller wakes a link's streams when their sockets have something to
// read: one epoll set per link, holding every stream socket's file
// descriptor (edge-triggered), waited on by one goroutine through Go's own
// poller (an epoll descriptor is readable while it has events). That
// goroutine tells each stream whose socket became readable (readableMsg)
// and runs the link's strand itself, so the Stream reads its socket and
// hands the bytes to the carrier on the goroutine the socket woke: one
// wake-up for any number of sockets, where a goroutine parked per socket
// costs a wake-up, a peek and, for a stream that was idle, a new
// goroutine each. An idle stream costs an epoll entry in the kernel and
// nothing in Go.
type poller struct {
	env    *env
	strand *strand
	epfd   int
	f      *os.File // epfd, for Go's poller
	raw    syscall.RawConn

	mu     sync.Mutex
	subs   map[uint64]*actor.PID // what each registration wakes
	next   uint64
	closed bool

	events []unix.EpollEvent // the loop's
	woken  []woken           // the loop's
	n      int               // the loop's: events collected
	waitFn func(fd uintptr) bool
}

// woken is a stream to tell, and what.
type woken struct {
	pid *actor.PID
	msg *readableNow
}

// newPoller starts a link's poller; nil where none can be made (the
// streams then wait with goroutines of their own).
func newPoller(e *env, st *strand) *poller {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil
	}
	f := os.NewFile(uintptr(epfd), "sockmux-poller") // non-blocking: Go's poller waits on it
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	p := &poller{env: e, strand: st, epfd: epfd, f: f, raw: raw, subs: make(map[uint64]*actor.PID),
		events: make([]unix.EpollEvent, 128)}
	p.waitFn = func(fd uintptr) bool {
		var werr error
		p.n, werr = sysEpollWait(int(fd), p.events)
		return p.n > 0 || werr != nil && werr != unix.EINTR && werr != unix.EAGAIN
	}
	e.goroutine(p.loop)
	return p
}

// add registers conn's socket: pid is told each time it becomes readable
// (or hung up, or failed). It returns the registration, 0 if it failed.
func (p *poller) add(conn syscall.RawConn, pid *actor.PID) uint64 {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0
	}
	p.next++
	tok := p.next
	p.subs[tok] = pid
	p.mu.Unlock()
	var err error
	cerr := conn.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(tok), Pad: int32(tok >> 32)}
		err = sysEpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		p.mu.Lock()
		delete(p.subs, tok)
		p.mu.Unlock()
		return 0
	}
	return tok
}

// remove takes registration tok of conn's socket out, before the socket
// is closed.
func (p *poller) remove(tok uint64, conn syscall.RawConn) {
	p.mu.Lock()
	delete(p.subs, tok)
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		_ = conn.Control(func(fd uintptr) { _ = sysEpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	}
}

// close ends the loop; registrations left go with the epoll set.
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.f.Close()
}

// loop waits for sockets to become readable, tells their streams, and
// runs the strand unless another goroutine holds it.
func (p *poller) loop() {
	for {
		p.n = 0
		err := p.raw.Read(p.waitFn)
		n := p.n
		if err != nil || n <= 0 {
			return // closed
		}
		p.mu.Lock()
		for _, ev := range p.events[:n] {
			if pid := p.subs[uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32]; pid != nil {
				msg := readableMsg
				if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					msg = hangupMsg
				}
				p.woken = append(p.woken, woken{pid, msg})
			}
		}
		p.mu.Unlock()
		ran := p.strand.claim()
		for i, w := range p.woken {
			p.env.send(w.pid, w.msg)
			p.woken[i] = woken{}
		}
		p.woken = p.woken[:0]
		if ran {
			p.strand.run(strandRunMax)
		}
	}
}
