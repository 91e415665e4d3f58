// Package preauth owns the limits on connections that have been accepted
// but have not finished their handshake yet: how many may be pending in
// total and per source address, how long one may stay silent (the
// first-byte timeout) and how long its whole handshake may take. Anyone
// who can reach a listening port can open such connections for free, so
// what each one holds (a descriptor, goroutines, a slot) must be bounded
// without letting the idle ones keep real peers out.
//
// A Gate admits each accepted connection. When the gate is full, or the
// connection's source is, the oldest connection of that scope that has
// not sent a byte yet (none read, and none waiting unread in its socket)
// is evicted (closed) to make room: a silent
// connection is the cheapest to drop and the least likely to be a real
// peer, whose first bytes follow its connect within a round trip. When
// every slot of its scope is held by a connection that has sent
// something, the oldest of those that has been at it longer than the
// first-byte timeout is evicted instead (ErrEvictedSlow): a real peer's
// handshake is a few round trips, and one that trickles a byte a second
// to hold its slot (slowloris) is not one. Failing that, a connection from
// a source that holds less than its share of the gate (MaxPending over the
// sources pending) takes the slot of the oldest connection of the source
// that holds the most (ErrEvictedShare): many slow connections from a few
// addresses cannot keep out a peer from another. A new connection is
// refused only when none of these applies.
//
// The users are the TLS carrier's listener and sockmux's own link
// handshake (through Listen and Lookup).
package preauth

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockmux/sockmux/internal/ratelog"
)

// Errors of a Gate, for errors.Is: why it refused a connection (Admit), or
// why it closed one it had admitted (Entry.Err).
var (
	// ErrFull refuses a connection: every pending slot is held by a
	// connection that has sent bytes, so none could be evicted.
	ErrFull = errors.New("too many pending handshakes")
	// ErrSourceFull refuses a connection: every slot its source may hold
	// is held by a connection that has sent bytes.
	ErrSourceFull = errors.New("too many pending handshakes from one source")
	// ErrEvicted closed a connection that had sent nothing when a new one
	// needed its slot.
	ErrEvicted = errors.New("evicted while idle to make room for a new connection")
	// ErrEvictedShare closed a connection of the source that held the most
	// of a full gate when one from a source holding less than its share
	// needed a slot.
	ErrEvictedShare = errors.New("evicted: its source held the most pending handshakes while another source needed a slot")
	// ErrEvictedSlow closed a connection whose handshake had run longer
	// than the first-byte timeout when a new one needed its slot.
	ErrEvictedSlow = errors.New("evicted: its handshake ran longer than the first-byte timeout while a new connection needed its slot")
	// ErrFirstByteTimeout closed a connection that sent nothing within
	// the first-byte timeout.
	ErrFirstByteTimeout = errors.New("no byte received within the first-byte timeout")
	// ErrTimeout closed a connection whose handshake was not done within
	// the handshake timeout.
	ErrTimeout = errors.New("handshake not done within the handshake timeout")
	// ErrClosed refuses a connection offered to a closed gate.
	ErrClosed = errors.New("pre-authentication gate closed")
)

// Defaults of a Config.
const (
	// DefaultMaxPending bounds the connections pending in one gate: each
	// holds a descriptor and a couple of goroutines, so 256 is far below
	// any file limit while more than the real peers of a node ever
	// handshake at once.
	DefaultMaxPending = 256
	// DefaultMaxPerSource is an eighth of DefaultMaxPending, so that a
	// single address cannot take the whole gate, while a host running
	// several links of MaxCarriers (16) carriers each, or a NAT in front
	// of a few peers, still fits.
	DefaultMaxPerSource = 32
	// DefaultFirstByteTimeout is how long a connection may stay silent. A
	// real peer speaks first (a TLS ClientHello, a sockmux HELLO) as soon
	// as its connect returns, so its first bytes follow our accept by
	// half a round trip; 3 s leaves room for that segment to be lost and
	// resent once on a slow path (TCP's retransmission timeout starts at
	// 1 s, at 3 s after a lost SYN).
	DefaultFirstByteTimeout = 3 * time.Second
	// DefaultTimeout bounds a whole handshake, as carriers.DialTimeout
	// and the link's handshake timeout do.
	DefaultTimeout = 10 * time.Second
)

// Config sets the limits of a Gate. Zero fields take the defaults.
type Config struct {
	// MaxPending bounds the connections pending at once.
	MaxPending int
	// MaxPerSource bounds those from one source: an IPv4 address, or an
	// IPv6 /64 (one host's usual allotment, so that an IPv6 host does not
	// get 2^64 sources). It is at most MaxPending.
	MaxPerSource int
	// FirstByteTimeout closes a connection that sent nothing this long
	// after it was admitted.
	FirstByteTimeout time.Duration
	// Timeout closes a connection whose handshake has not ended (Done)
	// this long after it was admitted. It is a backstop: the handshake
	// usually has a deadline of its own.
	Timeout time.Duration
	// Logger gets the evictions and refusals, at warn, at most one line
	// per cause per ratelog.DefaultEvery with the count of those left out.
	// Nil logs nothing.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxPerSource <= 0 {
		c.MaxPerSource = DefaultMaxPerSource
	}
	c.MaxPerSource = min(c.MaxPerSource, c.MaxPending)
	if c.FirstByteTimeout <= 0 {
		c.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Stats are a gate's counters since it was made.
type Stats struct {
	Pending           int   // connections pending now
	Admitted          int64 // connections admitted
	Evicted           int64 // closed while idle to make room (ErrEvicted)
	Refused           int64 // refused by Admit (ErrFull, ErrSourceFull)
	FirstByteTimeouts int64 // closed silent (ErrFirstByteTimeout)
	Timeouts          int64 // closed with their handshake unfinished (ErrTimeout)
}

// clock is time for the gate; tests give a fake one.
type clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d, unless the returned
	// stop is called first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Gate bounds the connections pending their handshake. It is safe for
// concurrent use.
type Gate struct {
	cfg   Config
	clk   clock
	limit *ratelog.Limiter

	mu       sync.Mutex
	pending  list.List      // of *Entry, oldest first
	bySource map[string]int // pending per source
	closed   bool
	stats    Stats
}

// New returns a gate with the limits of cfg.
func New(cfg Config) *Gate {
	return newGate(cfg, realClock{})
}

func newGate(cfg Config, clk clock) *Gate {
	return &Gate{cfg: cfg.withDefaults(), clk: clk, limit: ratelog.New(0), bySource: make(map[string]int)}
}

// Config is the gate's configuration, defaults filled in.
func (g *Gate) Config() Config { return g.cfg }

// Entry is one admitted connection's slot. Its owner calls Active when the
// connection has sent its first byte (Conn does it) and Done when the
// handshake has ended, either way.
type Entry struct {
	g        *Gate
	c        net.Conn
	source   string
	admitted time.Time
	seen     atomic.Bool // Active was called: the fast path of Conn.Read
	// Guarded by g.mu:
	elem       *list.Element // nil once released
	active     bool
	stop       func() bool // the timer of the current stage
	err        error       // why the gate closed the connection
	registered bool        // in the Lookup registry
}

// Admit gives c a slot, evicting the oldest idle connection of its source
// when the source is at its cap, or of the gate when the gate is; the
// evicted connection is closed before Admit returns. When no connection
// of the scope is idle, c is refused with ErrSourceFull or ErrFull, and
// the caller closes it.
func (g *Gate) Admit(c net.Conn) (*Entry, error) {
	return g.admit(c, false)
}

func (g *Gate) admit(c net.Conn, register bool) (*Entry, error) {
	src := Source(c.RemoteAddr())
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	var victim *Entry
	var err error
	why := ErrEvicted
	if n := g.bySource[src]; n >= g.cfg.MaxPerSource {
		if victim = g.oldestIdle(src); victim == nil {
			if victim, why = g.oldestSlow(src), ErrEvictedSlow; victim == nil {
				err = fmt.Errorf("%w: %d from %s, all past their first byte and younger than %v", ErrSourceFull, n, src, g.cfg.FirstByteTimeout)
			}
		}
	} else if g.pending.Len() >= g.cfg.MaxPending {
		if victim = g.oldestIdle(""); victim == nil {
			if victim, why = g.oldestSlow(""), ErrEvictedSlow; victim == nil {
				if victim, why = g.overShare(src), ErrEvictedShare; victim == nil {
					err = fmt.Errorf("%w: %d, all past their first byte and younger than %v, and %s holds its share", ErrFull, g.pending.Len(), g.cfg.FirstByteTimeout, src)
				}
			}
		}
	}
	if err != nil {
		g.stats.Refused++
		g.mu.Unlock()
		g.warn("pending handshakes full: refused a connection", "peer", addrString(c), "err", err)
		return nil, err
	}
	if victim != nil {
		g.release(victim, why)
		g.stats.Evicted++
	}
	e := &Entry{g: g, c: c, source: src, admitted: g.clk.Now(), registered: register}
	e.elem = g.pending.PushBack(e)
	g.bySource[src]++
	g.stats.Admitted++
	if register {
		registry.Store(c, e)
	}
	e.stop = g.clk.AfterFunc(g.cfg.FirstByteTimeout, func() { g.expire(e, false) })
	pending := g.pending.Len()
	g.mu.Unlock()
	if victim != nil {
		victim.c.Close()
		msg := "pending handshakes full: evicted the oldest idle connection"
		switch why {
		case ErrEvictedSlow:
			msg = "pending handshakes full: evicted the oldest slow handshake"
		case ErrEvictedShare:
			msg = "pending handshakes full: evicted a handshake of the source holding the most"
		}
		g.warn(msg, "evicted", addrString(victim.c), "for", addrString(c), "pending", pending)
	}
	return e, nil
}

// oldestIdle is the longest pending connection that has sent nothing,
// from src ("": from any source); g.mu is held. The scan is linear, over
// at most MaxPending entries, and only runs when a scope is full. A
// connection whose first bytes wait unread in its socket has sent
// something: it is marked active and passed over (a burst of real peers,
// such as edges failing over to this hub at once, is not evicted).
func (g *Gate) oldestIdle(src string) *Entry {
	for el := g.pending.Front(); el != nil; el = el.Next() {
		e := el.Value.(*Entry)
		if e.active || src != "" && e.source != src {
			continue
		}
		if sentSomething(e.c) {
			g.activate(e)
			continue
		}
		return e
	}
	return nil
}

// oldestSlow is the longest pending connection from src ("": from any
// source) admitted longer than the first-byte timeout ago, whatever it
// sent; g.mu is held. The list is in the order of admission, so the first
// of the scope is the oldest: if it is not old enough, none is.
func (g *Gate) oldestSlow(src string) *Entry {
	now := g.clk.Now()
	for el := g.pending.Front(); el != nil; el = el.Next() {
		e := el.Value.(*Entry)
		if src != "" && e.source != src {
			continue
		}
		if now.Sub(e.admitted) >= g.cfg.FirstByteTimeout {
			return e
		}
		return nil
	}
	return nil
}

// overShare is, when src holds less than its share of the gate (MaxPending
// over the sources pending, src counted), the oldest connection of the
// source that holds the most; nil otherwise. g.mu is held.
func (g *Gate) overShare(src string) *Entry {
	sources := len(g.bySource)
	if g.bySource[src] == 0 {
		sources++
	}
	if g.bySource[src] >= g.cfg.MaxPending/sources {
		return nil
	}
	top, most := "", 0
	for s, n := range g.bySource {
		if n > most || n == most && s < top {
			top, most = s, n
		}
	}
	if most <= g.bySource[src]+1 {
		return nil // taking from it would only swap the two
	}
	for el := g.pending.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*Entry); e.source == top {
			return e
		}
	}
	return nil
}

// release frees e's slot, recording why the gate closes it (nil when the
// owner is done); g.mu is held.
func (g *Gate) release(e *Entry, why error) {
	g.pending.Remove(e.elem)
	e.elem = nil
	e.err = why
	if n := g.bySource[e.source] - 1; n > 0 {
		g.bySource[e.source] = n
	} else {
		delete(g.bySource, e.source)
	}
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
	if e.registered {
		registry.CompareAndDelete(e.c, e)
		e.registered = false
	}
}

// expire closes e when its timer of the stage it was armed in (idle or
// active) fires and e is still there, in that stage.
func (g *Gate) expire(e *Entry, active bool) {
	g.mu.Lock()
	if e.elem == nil || e.active != active {
		g.mu.Unlock()
		return
	}
	if active {
		g.release(e, ErrTimeout)
		g.stats.Timeouts++
	} else {
		g.release(e, ErrFirstByteTimeout)
		g.stats.FirstByteTimeouts++
	}
	g.mu.Unlock()
	e.c.Close()
}

// Stats returns the gate's counters.
func (g *Gate) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Pending = g.pending.Len()
	return s
}

// Close refuses every later Admit and forgets the pending connections,
// stopping their timers; it does not close them: their owners' handshakes
// end them.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for g.pending.Len() > 0 {
		g.release(g.pending.Front().Value.(*Entry), nil)
	}
}

func (g *Gate) warn(msg string, args ...any) {
	if g.cfg.Logger != nil {
		g.limit.Warn(g.cfg.Logger, msg, args...)
	}
}

// Active records that the connection has sent its first byte: it can no
// longer be evicted, and is closed at the handshake timeout (counted from
// its admission) unless Done comes first.
func (e *Entry) Active() {
	if e.seen.Swap(true) {
		return
	}
	g := e.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.elem == nil || e.active {
		return
	}
	g.activate(e)
}

// activate moves e to the active stage: no longer evictable, closed at
// the handshake timeout; g.mu is held.
func (g *Gate) activate(e *Entry) {
	e.active = true
	e.stop()
	left := e.admitted.Add(g.cfg.Timeout).Sub(g.clk.Now())
	e.stop = g.clk.AfterFunc(max(left, 0), func() { g.expire(e, true) })
}

// Done frees the slot: the handshake has ended, well or not. Calling it
// again, or after the gate closed the connection, does nothing.
func (e *Entry) Done() {
	e.g.mu.Lock()
	defer e.g.mu.Unlock()
	if e.elem != nil {
		e.g.release(e, nil)
	}
}

// Err is why the gate closed the connection (ErrEvicted,
// ErrFirstByteTimeout, ErrTimeout), nil when it did not: a handshake that
// fails can say why.
func (e *Entry) Err() error {
	e.g.mu.Lock()
	defer e.g.mu.Unlock()
	return e.err
}

// Conn is the admitted connection with a first-byte detector: the first
// Read that returns bytes calls Active. The handshake reads through it.
func (e *Entry) Conn() *Conn { return &Conn{Conn: e.c, e: e} }

// Conn is an admitted connection whose first bytes mark its entry active.
type Conn struct {
	net.Conn
	e *Entry
}

// Read reads from the connection, marking the entry active once bytes
// have come; past that it costs one atomic load.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.e.seen.Load() {
		c.e.Active()
	}
	return n, err
}

// Source is the key a gate counts a peer under: the IPv4 address (an
// IPv4-mapped IPv6 one too), the /64 of an IPv6 address, the network name
// of an address that is not IP (all of a unix socket's peers are one
// source).
func Source(a net.Addr) string {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	case nil:
		return "unknown"
	default:
		return a.Network()
	}
	ip := ap.Addr().Unmap()
	if !ip.Is6() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

func addrString(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return "unknown"
}
