package actors

// A dialling link's addresses: the failover list Node.Connect was given,
// which of them is in use, and when the link moves to the next.

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"

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

// resumeRefusals is how many dials in a row that the address in use
// refuses (nothing listens there: the peer's process is gone, and the
// link's session with it) end a link waiting to resume, when it has
// other addresses to move to.
const resumeRefusals = 2

// resumeRefused takes a dial of a link waiting to resume that failed with
// err. A link with a failover list whose address in use refused it
// resumeRefusals times in a row gives up resuming there: the peer that
// held the session is gone (a hub killed), so waiting out the resume
// window would only keep the edge from the next hub (30 s by default,
// where a hub's edges should be at the next one within seconds). The
// session ends, its streams reset, and the link moves on. It reports
// whether it ended the session.
func (l *linkActor) resumeRefused(ctx actor.Context, err error) bool {
	if !l.up || !l.resuming || !l.addrs.list() || !errors.Is(err, syscall.ECONNREFUSED) {
		l.refusedInRow = 0
		return false
	}
	l.refusedInRow++
	if l.refusedInRow < resumeRefusals {
		return false
	}
	l.refusedInRow = 0
	l.downReason = fmt.Errorf("%w: %s refuses connections, so the peer that held the link is gone", errResumeExpired, l.peer)
	l.env.log.Warn("link not resumable: its address refuses connections; moving to the next", "peer", l.peer, "err", err)
	l.backoff = l.env.cfg.Backoff // the next address: a fresh start
	l.sessionDown(ctx, l.downReason)
	return true
}
