package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// cutHub is a member whose control plane and hub-link door are each
// behind a proxy, so a test can blackhole either path.
type cutHub struct {
	m       *Member
	control *testkit.Proxy // in front of its control plane (its advertised address)
	door    *testkit.Proxy // in front of its hub-link door
}

// startCutHub starts a member whose control plane is advertised at a
// proxy in front of its listener and whose hub links are taken behind
// another, seeded with the members given.
func startCutHub(t testing.TB, key []byte, seeds ...*Member) *cutHub {
	t.Helper()
	bind := testkit.FreeAddr(t)
	control := testkit.NewProxy(t, bind)
	d := openTestDoor(t, key)
	door := testkit.NewProxy(t, d.addr)
	cfg := Config{Provider: "static", Key: key, Probe: 200 * time.Millisecond, Logger: testLogger(t),
		Bind: bind, Advertise: control.Addr(), Link: door.Addr()}
	for _, s := range seeds {
		cfg.Seeds = append(cfg.Seeds, s.ID())
	}
	return &cutHub{m: start(t, cfg), control: control, door: door}
}

// TestRejoinAfterCutOff: a member cut off from the others for longer
// than the failure window is dropped by them (its protoactor id is
// blocked for good there); when the path comes back, one side rejoins by
// itself under a fresh id (the cut-off member, or of two that counted
// each other out the one smallerSide names), and within a bounded time
// every member counts every other again and every entry is back in every
// directory.
func TestRejoinAfterCutOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		others int  // members besides b
		alone  bool // b counts the others out too, before the heal
		cut    func(*cutHub)
		heal   func(*cutHub)
	}{
		// Only its hub links go silent: the others fail its probes, it
		// passes theirs and goes on counting them (as a hub stopped with
		// SIGSTOP finds on SIGCONT): it is expelled and does not know.
		{"hub link blackholed", 2, false,
			func(h *cutHub) { h.door.Pause() },
			func(h *cutHub) { h.door.Resume() }},
		// Everything to it goes silent: each side counts the other out,
		// and the smaller side (it) rejoins.
		{"control plane and hub link blackholed", 2, true,
			func(h *cutHub) { h.control.Pause(); h.door.Pause() },
			func(h *cutHub) { h.control.Resume(); h.door.Resume() }},
		// Two members, each counting only itself: the one of the higher
		// address rejoins.
		{"two members, everything blackholed", 1, true,
			func(h *cutHub) { h.control.Pause(); h.door.Pause() },
			func(h *cutHub) { h.control.Resume(); h.door.Resume() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := testKey(t)
			a, _ := startHub(t, key, testLogger(t))
			b := startCutHub(t, key, a)
			others := []*Member{a}
			if tc.others == 2 {
				c, _ := startHub(t, key, testLogger(t), a)
				others = append(others, c)
			}
			all := append([]*Member{b.m}, others...)
			for _, m := range all {
				waitHubs(t, m, all...)
			}
			var rows, rest []Entry
			for i, m := range all {
				e := Entry{Bind: fmt.Sprintf("tcp/*:%d", i+1), Hub: m.ID()}
				if err := m.Register(Entry{Bind: e.Bind}); err != nil {
					t.Fatal(err)
				}
				rows = append(rows, e)
				if m != b.m {
					rest = append(rest, e)
				}
			}
			for _, m := range all {
				waitFor(t, m, "every hub's entry", holds(rows...))
			}
			before := map[*Member]string{}
			for _, m := range all {
				before[m] = m.memberID()
			}

			tc.cut(b)
			for _, m := range others {
				waitHubs(t, m, others...)
				waitFor(t, m, "b's entry gone", holds(rest...))
			}
			if tc.alone {
				waitHubs(t, b.m, b.m)
			}

			tc.heal(b)
			healed := time.Now()
			for _, m := range all {
				waitHubs(t, m, all...)
				waitFor(t, m, "every hub's entry again", holds(rows...))
			}
			// A measurement for the report, not an assertion.
			t.Logf("every member counted every other and held every entry again %v after the path came back", time.Since(healed).Round(10*time.Millisecond))
			want := b.m // the cut-off member, the smaller side
			if len(others) == 1 && a.ID() > b.m.ID() {
				want = a // of two alone, the higher address
			}
			for _, m := range all {
				if fresh := m.memberID() != before[m]; fresh != (m == want) {
					t.Errorf("member %s has a fresh id: %v, want %v (only %s rejoins)", m.ID(), fresh, m == want, want.ID())
				}
			}
		})
	}
}

// TestSmallerSide: of two members that counted each other out, exactly
// one rejoins: the one counting fewer members, then the one whose lowest
// address is higher, then the higher address.
func TestSmallerSide(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		mine, theirs []string
		self, peer   string
		want         bool
	}{
		{"fewer counted", []string{"b"}, []string{"a", "c"}, "b", "a", true},
		{"more counted", []string{"a", "c"}, []string{"b"}, "a", "b", false},
		{"equal, higher lowest", []string{"c", "d"}, []string{"a", "b"}, "c", "a", true},
		{"equal, lower lowest", []string{"a", "b"}, []string{"c", "d"}, "b", "d", false},
		{"alone each, higher", []string{"b"}, []string{"a"}, "b", "a", true},
		{"alone each, lower", []string{"a"}, []string{"b"}, "a", "b", false},
		{"nothing counted, higher", nil, nil, "b", "a", true},
	} {
		if got := smallerSide(tc.mine, tc.theirs, tc.self, tc.peer); got != tc.want {
			t.Errorf("%s: smallerSide = %v, want %v", tc.name, got, tc.want)
		}
		if back := smallerSide(tc.theirs, tc.mine, tc.peer, tc.self); back == tc.want {
			t.Errorf("%s: the other side also says %v: both or neither would rejoin", tc.name, back)
		}
	}
}

// TestHeard: a member asks to rejoin when a member that passes its
// probes says it counted this one's id out, and either still counts it
// (this one is the one left) or both counted each other out and this is
// the smaller side; a word about another id, or from a member failing
// its probes (a cut still open), asks nothing.
func TestHeard(t *testing.T) {
	t.Parallel()
	self := probeMember{ID: "b1", Host: "10.0.0.2", Port: 7946}
	peerA := probeMember{ID: "a1", Host: "10.0.0.1", Port: 7946}
	for _, tc := range []struct {
		name     string
		fails    int
		mutual   bool     // this member counted a1 out too
		counted  []string // the members this one counts
		expelled string   // what a says it counted out here
		theirs   []string // the members a counts
		want     bool
	}{
		{"another id", 0, false, []string{"10.0.0.1:7946", "10.0.0.2:7946"}, "b0", []string{"10.0.0.1:7946"}, false},
		{"left by a member it counts", 0, false, []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"}, "b1", []string{"10.0.0.1:7946", "10.0.0.3:7946"}, true},
		{"word across a cut still open", 1, false, []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"}, "b1", []string{"10.0.0.2:7946"}, false},
		{"both counted out, smaller", 0, true, []string{"10.0.0.2:7946"}, "b1", []string{"10.0.0.1:7946", "10.0.0.3:7946"}, true},
		{"both counted out, larger", 0, true, []string{"10.0.0.2:7946", "10.0.0.3:7946"}, "b1", []string{"10.0.0.1:7946"}, false},
	} {
		asked := false
		p := &staticProvider{self: self, failures: DefaultProbeFailures,
			peers:   map[string]*peer{peerA.address(): {member: &peerA, fails: tc.fails}},
			counted: map[string]string{}, out: map[string]string{},
			onExpelled: func(string) { asked = true }}
		for _, a := range tc.counted {
			p.counted[a] = "id of " + a
		}
		if tc.mutual {
			p.out[peerA.address()] = peerA.ID
		}
		p.heard(&probeDoc{Op: opLive, Members: []probeMember{peerA}, Counted: tc.theirs, Expelled: tc.expelled})
		if asked != tc.want {
			t.Errorf("%s: asked to rejoin: %v, want %v", tc.name, asked, tc.want)
		}
	}
}
