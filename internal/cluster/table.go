package cluster

// The directory's rows by hub, each hub's newest registration only: what
// the grain holds, and what every member holds of the grain's answers and
// pushes.
//
// A hub sends its whole set at every sync, numbered (message.Version):
// a counter seeded from the hub's start time, so a restarted hub at the
// same address counts as newer, and raised at every sync. Syncs can
// arrive out of order (retried requests, two in flight across a change
// of the grain's owner), and a push of the grain can overtake the
// answer to a newer sync; without the numbers an older set would
// overwrite a newer one, and a bind the hub holds would vanish from the
// directory until its next sync. So a registration replaces a hub's
// held one only if it is at least as new.

import (
	"maps"
	"slices"
)

// table is a directory: each hub's newest registration.
type table struct {
	hubs map[string]registration
}

// registration is one hub's whole set of entries, as of version.
type registration struct {
	version uint64
	entries []Entry
}

// put makes entries hub's registration, as of version, unless the one
// held is newer (stale). changed reports whether the directory changed.
func (t *table) put(hub string, version uint64, entries []Entry) (changed, stale bool) {
	old, ok := t.hubs[hub]
	if ok && version < old.version {
		return false, true
	}
	if t.hubs == nil {
		t.hubs = map[string]registration{}
	}
	es := append([]Entry(nil), entries...)
	sortEntries(es)
	t.hubs[hub] = registration{version: version, entries: es}
	return !ok && len(es) > 0 || ok && !slices.Equal(old.entries, es), false
}

// drop forgets the hubs live does not count, reporting how many entries
// went with them.
func (t *table) drop(live func(hub string) bool) int {
	n := 0
	for hub, r := range t.hubs {
		if !live(hub) {
			n += len(r.entries)
			delete(t.hubs, hub)
		}
	}
	return n
}

// list is the directory, sorted by bind then hub.
func (t *table) list() []Entry {
	var out []Entry
	for _, r := range t.hubs {
		out = append(out, r.entries...)
	}
	sortEntries(out)
	return out
}

// versions is the version of each hub's registration held.
func (t *table) versions() map[string]uint64 {
	out := make(map[string]uint64, len(t.hubs))
	for hub, r := range t.hubs {
		out[hub] = r.version
	}
	return out
}

// merge takes a directory the grain sent (its entries and the version
// of each hub's registration): each hub's registration replaces the one
// held unless that is newer; hubs it does not list keep what is held
// (a new activation of the grain knows only the hubs that have synced
// with it since it started). It reports whether anything changed.
func (t *table) merge(entries []Entry, versions map[string]uint64) bool {
	byHub := map[string][]Entry{}
	for _, e := range entries {
		byHub[e.Hub] = append(byHub[e.Hub], e)
	}
	changed := false
	for _, hub := range slices.Sorted(maps.Keys(versions)) {
		if c, _ := t.put(hub, versions[hub], byHub[hub]); c {
			changed = true
		}
	}
	return changed
}
