package cluster

// A hub that stood still: stopped (SIGSTOP), paused with its VM, or
// starved of CPU for longer than the others wait for its answers.
//
// The others count such a hub out and block its member id for good
// (rejoin.go). When it runs again it is normally told so by their probes
// and answers (expel.go, heard), and rejoins. But that word reaches it
// only over protoactor's control plane, and a hub the others counted out
// may find that broken: they dropped their connections to it while it
// stood still, and the connections it makes again are answered as from
// a blocked member (protoactor's remote then gets nowhere with them: seen
// as "EndpointWriter lost connection" every few milliseconds, and no
// answer to any probe). Its probes of the others then fail, and it counts
// them out in turn, and each side is left alone: the split seen in about
// one run in six of TestClusterHubRejoins.
//
// So the provider watches its own clock: a ticker a quarter of the probe
// interval apart that finds a gap of more than the failure window less
// one interval (the least time in which the others can count it out)
// notes that this process stood still. A member that then counts another
// out within two failure windows of it does not take that as the other's
// failure but as its own: the others counted it out first, and it
// rejoins under a fresh id (a fresh actor system, whose connections no
// one has blocked), as if it had been told.

import "time"

// watchClock notes when this process stood still (p.frozenAt), until stop
// is closed.
func (p *staticProvider) watchClock(stop <-chan struct{}) {
	t := time.NewTicker(p.interval / 4)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		p.tick(last, now)
		last = now
	}
}

// tick takes two of the watcher's ticks in a row, at last and now: a gap
// between them longer than the least time in which the others can count
// this member out (the failure window less one interval) is noted.
func (p *staticProvider) tick(last, now time.Time) {
	limit := p.interval * time.Duration(max(p.failures-1, 1))
	gap := now.Sub(last)
	if gap <= limit {
		return
	}
	p.mu.Lock()
	p.frozenAt = now
	p.mu.Unlock()
	p.log.Warn("cluster: this hub did not run for longer than the others wait for it; they may have counted it out",
		"stood_still", gap.Round(time.Millisecond), "limit", limit)
}

// frozenLately reports, with p.mu held, whether this process stood still
// within the last two failure windows before now.
func (p *staticProvider) frozenLately(now time.Time) bool {
	window := p.interval * time.Duration(p.failures)
	return !p.frozenAt.IsZero() && now.Sub(p.frozenAt) < 2*window
}
