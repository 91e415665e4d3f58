package actors

// A dialling link's addresses: the failover list Node.Connect was given,
// which of them is in use, and when the link moves to the next.

import (
	"fmt"

	"github.com/sockmux/sockmux/carriers"
)

// failover is a dialling link's list of addresses and the rule for moving
// along it. Every dial goes to the address in use: the first carrier, the
// extra carriers of a striped link and the carriers that resume a link
// alike, so a link never spans two peers.
//
//   - An attempt that fails with no session up (a dial, a handshake) moves
//     to the next address at once, as ssh tries the addresses of a host in
//     turn; once every address has failed in a row (a round), the move
//     waits the redial backoff instead.
//   - A session lost for good (down and not resumable, or not resumed
//     within the resume window) moves to the next address, after the
//     backoff, and starts a new round there.
//   - After the last address comes the first again. The link stays on an
//     address while it works there: nothing moves it back to the first.
//
// With one address nothing ever moves, and every failure waits the
// backoff: the behaviour of a link that has no list.
type failover struct {
	dialers []carriers.Dialer
	at      int // the address in use
	failed  int // attempts that failed in a row in this round
}

// current is the address in use.
func (f *failover) current() carriers.Dialer { return f.dialers[f.at] }

// attemptFailed takes a failed attempt at the address in use, with no
// session up, and moves to the next address. now says whether to dial it
// at once (false: a round is over, wait the backoff).
func (f *failover) attemptFailed() (now bool) {
	f.failed++
	f.advance()
	if f.failed >= len(f.dialers) {
		f.failed = 0
		return false
	}
	return true
}

// sessionLost takes a session lost for good: the next address, after the
// backoff, starts a new round.
func (f *failover) sessionLost() {
	f.failed = 0
	f.advance()
}

// sessionUp ends the round: the address in use works.
func (f *failover) sessionUp() { f.failed = 0 }

func (f *failover) advance() { f.at = (f.at + 1) % len(f.dialers) }

// list reports whether there is more than one address to move between.
func (f *failover) list() bool { return len(f.dialers) > 1 }

// position is the address in use as "n of m", for logs.
func (f *failover) position() string { return fmt.Sprintf("%d of %d", f.at+1, len(f.dialers)) }

// names are the addresses, in order, for status.
func (f *failover) names() []string {
	out := make([]string, len(f.dialers))
	for i, d := range f.dialers {
		out[i] = d.String()
	}
	return out
}

// moved points the link at the address now in use, which it moved to
// because of why, and says so; with a single address it does nothing.
func (l *linkActor) moved(why string, now bool) {
	if !l.addrs.list() {
		return
	}
	from := l.dialer.String()
	l.dialer = l.addrs.current()
	l.peer = l.dialer.String()
	when := "after the backoff"
	if now {
		when = "now"
	}
	l.env.log.Info(fmt.Sprintf("failing over to %s (%s)", l.peer, l.addrs.position()),
		"addr", l.peer, "from", from, "reason", why, "dial", when)
}
