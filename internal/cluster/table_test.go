package cluster

import (
	"slices"
	"testing"
)

// TestDirectoryKeepsNewerVersions: a hub's older set, arriving after a
// newer one, leaves the newer in place, at the grain (put) and at a
// member taking the grain's directories (merge); a directory that does
// not list a hub (a new activation of the grain) keeps what is held.
func TestDirectoryKeepsNewerVersions(t *testing.T) {
	a8080 := Entry{Bind: "tcp/*:8080", Hub: "a:1", Link: "a:7000", Members: 1}
	a8081 := Entry{Bind: "tcp/*:8081", Hub: "a:1", Link: "a:7000", Members: 1}
	b8080 := Entry{Bind: "tcp/*:8080", Hub: "b:1", Link: "b:7000", Members: 2}

	t.Run("grain", func(t *testing.T) {
		var g table
		if changed, stale := g.put("a:1", 10, []Entry{a8080, a8081}); !changed || stale {
			t.Fatalf("first put: changed %v stale %v", changed, stale)
		}
		if changed, stale := g.put("a:1", 9, []Entry{a8080}); changed || !stale {
			t.Errorf("older put: changed %v stale %v, want ignored", changed, stale)
		}
		if got := g.list(); !slices.Equal(got, []Entry{a8080, a8081}) {
			t.Errorf("after an older set: %+v, want the newer", got)
		}
		if changed, stale := g.put("a:1", 10, []Entry{a8081, a8080}); changed || stale {
			t.Errorf("the same set again: changed %v stale %v", changed, stale)
		}
		if changed, _ := g.put("a:1", 11, nil); !changed {
			t.Error("a newer empty set: not a change")
		}
		if got := g.list(); len(got) != 0 {
			t.Errorf("after a newer empty set: %+v", got)
		}
		if v := g.versions()["a:1"]; v != 11 {
			t.Errorf("version held %d, want 11 (a hub with no entries keeps its version)", v)
		}
		g.put("b:1", 3, []Entry{b8080})
		if n := g.drop(func(hub string) bool { return hub == "a:1" }); n != 1 || len(g.list()) != 0 {
			t.Errorf("drop: %d entries, left %+v", n, g.list())
		}
	})

	t.Run("member", func(t *testing.T) {
		var m table
		newer := &message{Op: opEntries, Entries: []Entry{a8080, a8081, b8080}, Versions: map[string]uint64{"a:1": 20, "b:1": 5}}
		older := &message{Op: opEntries, Entries: []Entry{a8080}, Versions: map[string]uint64{"a:1": 19}}
		fresh := &message{Op: opEntries, Entries: []Entry{b8080}, Versions: map[string]uint64{"b:1": 6}}
		for _, d := range []*message{newer, older, fresh} {
			// Each as it would come over the wire.
			got, err := decode(encode(d).GetValue())
			if err != nil {
				t.Fatal(err)
			}
			m.merge(got.Entries, got.Versions)
		}
		want := []Entry{a8080, b8080, a8081}
		sortEntries(want)
		if got := m.list(); !slices.Equal(got, want) {
			t.Errorf("after newer, older, and a fresh grain's: %+v, want %+v", got, want)
		}
		if m.merge(older.Entries, older.Versions) {
			t.Error("an older directory counted as a change")
		}
	})
}
