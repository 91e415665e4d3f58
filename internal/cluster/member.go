package cluster

// Member: one hub's membership, the API the rest of sockmux uses.

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// retryAfter is how soon a failed sync with the directory is tried again.
const retryAfter = time.Second

// Member is this hub's membership of a cluster: its control plane, its
// own entries in the directory, and the directory as it last saw it.
type Member struct {
	cfg  Config
	log  *slog.Logger
	addr string // this hub's id: its control plane's address, the same in every incarnation

	kick   chan struct{}
	rejoin chan struct{} // an incarnation was found expelled (rejoin.go)
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	inc      *incarnation     // the protoactor member now; nil between two (rejoin.go)
	live     map[string]bool  // control-plane addresses of the members
	own      map[string]Entry // this hub's entries, by bind
	version  uint64           // of the last sync: this hub's registrations, numbered
	dir      table            // the directory, each hub's newest registration read or pushed
	shown    []Entry          // dir less the hubs not live: what Watch saw last
	watchers []chan []Entry
	hubWatch []chan []string
	closed   bool
	// withdrawn: this hub's hub-link listener closed (LinksClosed): its
	// syncs carry no entries.
	withdrawn bool
}

// Start makes this hub a member of the cluster cfg names: it starts the
// control plane, joins through the provider, and keeps this hub's entries
// registered until Close. A member the others count out while it lives
// (cut off past their failure window) joins again by itself, under a
// fresh protoactor id (rejoin.go).
func Start(cfg Config) (*Member, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Member{
		cfg: cfg, log: cfg.Logger,
		kick: make(chan struct{}, 1), rejoin: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		live: map[string]bool{}, own: map[string]Entry{},
		// Seeded from the start time: a restarted hub's registrations are
		// newer than those it made before.
		version: uint64(time.Now().UnixNano()),
	}
	inc, err := m.incarnate(cfg.Bind, nil)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.addr = inc.sys.Address()
	m.mu.Unlock()
	m.log.Info("cluster member started", "cluster", cfg.Name, "addr", m.addr, "provider", cfg.Provider, "tls", cfg.Key != nil)
	go m.loop()
	return m, nil
}

// ID is this hub's name in the cluster: its control plane's address,
// which Entry.Hub holds.
func (m *Member) ID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// Hubs lists the members' IDs, sorted.
func (m *Member) Hubs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.liveLocked()
}

// Register puts e in the directory as held by this hub (e.Hub and e.Link
// default to this hub's), replacing the entry for the same bind. It does
// not wait: the member sends its whole set to the directory grain at
// once, and again after every membership change.
func (m *Member) Register(e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if e.Hub == "" {
		e.Hub = m.addr
	}
	if e.Link == "" {
		e.Link = m.cfg.Link
	}
	if e.Hub != m.addr {
		return fmt.Errorf("%w: %s: hub %s is not this one (%s)", ErrEntry, e.Bind, e.Hub, m.addr)
	}
	if err := e.check(); err != nil {
		return err
	}
	m.own[e.Bind] = e
	m.kickLocked()
	return nil
}

// Unregister takes this hub's entry for bind out of the directory.
func (m *Member) Unregister(bind string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.own, bind)
	m.kickLocked()
	return nil
}

// Entries is the directory as this member last saw it, without the
// entries of hubs that are not members.
func (m *Member) Entries() []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.shown)
}

// Watch returns a channel that gets the directory (as Entries) whenever
// it changes; it holds only the newest, so a slow reader skips to it.
// The channel is closed by stop, which a watcher that goes before the
// member must call (the member would hand it every directory until it
// closes), or by Close. stop may be called more than once, and after
// Close.
func (m *Member) Watch() (ch <-chan []Entry, stop func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(chan []Entry, 1)
	if m.closed {
		close(c)
		return c, func() {}
	}
	c <- slices.Clone(m.shown)
	m.watchers = append(m.watchers, c)
	return c, func() { unwatch(&m.mu, &m.watchers, c) }
}

// WatchHubs returns a channel that gets the members' IDs (as Hubs)
// whenever the membership changes, holding only the newest. The channel
// is closed by stop or by Close, as Watch's.
func (m *Member) WatchHubs() (ch <-chan []string, stop func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(chan []string, 1)
	if m.closed {
		close(c)
		return c, func() {}
	}
	c <- m.liveLocked()
	m.hubWatch = append(m.hubWatch, c)
	return c, func() { unwatch(&m.mu, &m.hubWatch, c) }
}

// unwatch takes c out of the watchers ws, which mu guards, and closes
// it, unless Close has (then it is no longer among them).
func unwatch[T any](mu *sync.Mutex, ws *[]chan T, c chan T) {
	mu.Lock()
	defer mu.Unlock()
	if i := slices.Index(*ws, c); i >= 0 {
		*ws = slices.Delete(*ws, i, i+1)
		close(c)
	}
}

// watching counts the channels Watch and WatchHubs handed out that are
// still open: what the member hands every change to.
func (m *Member) watching() (dir, hubs int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.watchers), len(m.hubWatch)
}

// offer puts v in ch, a channel of capacity 1 whose only sender holds
// the member's lock, in place of what the reader has not taken.
func offer[T any](ch chan T, v T) {
	select {
	case <-ch:
	default:
	}
	ch <- v
}

// Close leaves the cluster: this hub's entries are taken out of the
// directory first, then the control plane stops. It takes a few seconds
// (protoactor lets the grains hand over).
func (m *Member) Close() error {
	m.shut(true)
	return nil
}

// shut stops the member; graceful says whether to leave (take the
// entries out, deregister from the provider) or vanish as a killed hub
// would.
func (m *Member) shut(graceful bool) {
	m.once.Do(func() {
		m.mu.Lock()
		m.closed = true
		clear(m.own)
		m.mu.Unlock()
		close(m.stop)
		<-m.done
		if graceful {
			if err := m.sync(); err != nil {
				m.log.Debug("cluster: could not take this hub's entries out of the directory", "reason", err)
			}
		}
		m.mu.Lock()
		inc := m.inc
		m.inc = nil
		m.mu.Unlock()
		if inc != nil { // nil: a rejoin could not start the next one
			inc.stop(graceful)
		}
		m.mu.Lock()
		for _, w := range m.watchers {
			close(w)
		}
		for _, w := range m.hubWatch {
			close(w)
		}
		m.watchers, m.hubWatch = nil, nil
		m.mu.Unlock()
		m.log.Info("cluster member stopped", "addr", m.addr)
	})
}

// kickLocked asks the loop for a sync now; m.mu is held.
func (m *Member) kickLocked() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// loop syncs this hub's entries with the directory when they change,
// after every membership change, and every Refresh; and rejoins the
// cluster when the others count this hub out (rejoin.go), so a sync and
// a rejoin never overlap.
func (m *Member) loop() {
	defer close(m.done)
	tick := time.NewTicker(m.cfg.Refresh)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	failing := false
	for {
		select {
		case <-m.stop:
			return
		case <-m.kick:
		case <-tick.C:
		case <-retry.C:
		case <-m.rejoin:
			if !m.rejoinCluster() {
				return
			}
		}
		err := m.sync()
		switch {
		case err != nil && !failing:
			m.log.Warn("cluster: directory not reachable, retrying", "reason", err)
			failing = true
		case err == nil && failing:
			m.log.Info("cluster: directory reachable again")
			failing = false
		}
		if err != nil {
			retry.Reset(retryAfter)
		}
	}
}

// sync sends this hub's whole set of entries to the directory grain and
// takes the directory it answers with.
func (m *Member) sync() error {
	m.mu.Lock()
	inc := m.inc
	if inc == nil {
		m.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrDirectory, errRejoining)
	}
	m.version++
	req := &message{Op: opSync, Hub: m.addr, Version: m.version, Entries: make([]Entry, 0, len(m.own))}
	for _, e := range m.own {
		if !m.withdrawn { // no other hub can reach them here (hublinks.go)
			req.Entries = append(req.Entries, e)
		}
	}
	m.mu.Unlock()
	sortEntries(req.Entries)
	res, err := inc.cl.Request(directoryIdentity, directoryKind, encode(req),
		cluster.WithTimeout(m.cfg.RequestTimeout), cluster.WithRetryCount(2))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	b, ok := res.(*wrapperspb.BytesValue)
	if !ok {
		return fmt.Errorf("%w: an answer of type %T", ErrDirectory, res)
	}
	ans, err := decode(b.GetValue())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	if ans.Op != opEntries {
		return fmt.Errorf("%w: %s: %s", ErrDirectory, ans.Op, ans.Error)
	}
	m.setDirectory(ans)
	return nil
}

// receivePush is the watcher actor: it takes the directory grain's pushes.
func (m *Member) receivePush(ctx actor.Context) {
	b, ok := ctx.Message().(*wrapperspb.BytesValue)
	if !ok {
		return
	}
	msg, err := decode(b.GetValue())
	if err != nil || msg.Op != opEntries {
		m.log.Warn("cluster: bad directory push", "from", ctx.Sender(), "reason", err)
		return
	}
	m.setDirectory(msg)
}

// topology takes a membership change of incarnation inc: protoactor
// calls it, in the provider's goroutine, with its member list locked, so
// it must not wait. A change an incarnation no longer current publishes
// (stopping, after a rejoin began) is not the hub's membership.
func (m *Member) topology(inc *incarnation, t *cluster.ClusterTopology) {
	if m.topologyLocked(inc, t) {
		m.expelled(inc, "this hub's own registration is gone from the cluster provider (its lease or health check ran out)")
	}
}

// topologyLocked takes t under mu, and reports whether t shows this
// incarnation counted out by a provider that has no word for it but
// the hub's own registration gone (selfGone).
func (m *Member) topologyLocked(inc *incarnation, t *cluster.ClusterTopology) (counted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inc != inc {
		return false
	}
	counted = inc.selfGone(t)
	was := maps.Clone(m.live)
	clear(m.live)
	for _, mem := range t.Members {
		m.live[mem.Address()] = true
	}
	for _, mem := range t.Joined {
		// A rejoined incarnation counts anew the hubs this hub counted
		// all along: not news.
		if !inc.rejoined || !was[mem.Address()] {
			m.log.Info("cluster: hub joined", "hub", mem.Address())
		}
	}
	for _, mem := range t.Left {
		m.log.Info("cluster: hub left", "hub", mem.Address())
	}
	m.dir.drop(func(hub string) bool { return m.live[hub] })
	hubs := m.liveLocked()
	for _, w := range m.hubWatch {
		offer(w, slices.Clone(hubs))
	}
	m.publishLocked()
	m.kickLocked()
	return counted
}

// isLive reports whether hub is a member.
func (m *Member) isLive(hub string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[hub]
}

// liveAddrs lists the members' addresses.
func (m *Member) liveAddrs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.liveLocked()
}

func (m *Member) liveLocked() []string {
	out := make([]string, 0, len(m.live))
	for a := range m.live {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// setDirectory takes the directory as read or pushed: each hub's
// registration in it that is not older than the one held.
func (m *Member) setDirectory(d *message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dir.merge(d.Entries, d.Versions) {
		m.publishLocked()
	}
}

// publishLocked hands the directory, less the hubs not live, to the
// watchers if it changed; m.mu is held.
func (m *Member) publishLocked() {
	all := m.dir.list()
	shown := make([]Entry, 0, len(all))
	for _, e := range all {
		if m.live[e.Hub] {
			shown = append(shown, e)
		}
	}
	if slices.Equal(shown, m.shown) {
		return
	}
	m.shown = shown
	for _, w := range m.watchers {
		offer(w, slices.Clone(shown))
	}
}

// memberID is this hub's protoactor member id now: a fresh one after
// every rejoin.
func (m *Member) memberID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inc == nil {
		return ""
	}
	return m.inc.sys.ID
}
