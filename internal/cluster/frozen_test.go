package cluster

import (
	"log/slog"
	"testing"
	"time"
)

// TestStoodStill: a member that stood still lately and then counts
// another out asks to rejoin (the others counted it out first, and their
// word may never reach it); one that did not, or did long ago, counts the
// other out and asks nothing.
func TestStoodStill(t *testing.T) {
	t.Parallel()
	peerA := probeMember{ID: "a1", Host: "10.0.0.1", Port: 7946}
	window := time.Second * time.Duration(DefaultProbeFailures)
	for _, tc := range []struct {
		name     string
		frozenAt time.Duration // before now; 0: never
		want     bool
	}{
		{"never stood still", 0, false},
		{"stood still just now", time.Millisecond, true},
		{"stood still a window ago", window, true},
		{"stood still long ago", 3 * window, false},
	} {
		asked := ""
		p := &staticProvider{self: probeMember{ID: "b1", Host: "10.0.0.2", Port: 7946},
			interval: time.Second, failures: DefaultProbeFailures, log: slog.New(slog.DiscardHandler),
			peers:   map[string]*peer{peerA.address(): {member: &peerA, fails: DefaultProbeFailures - 1}},
			counted: map[string]string{}, out: map[string]string{},
			onExpelled: func(why string) { asked = why }}
		if tc.frozenAt != 0 {
			p.frozenAt = time.Now().Add(-tc.frozenAt)
		}
		p.judge(probeResult{addr: peerA.address()}) // no answer: its last allowed failure
		if (asked != "") != tc.want {
			t.Errorf("%s: asked to rejoin: %q, want %v", tc.name, asked, tc.want)
		}
		if p.peers[peerA.address()].fails != DefaultProbeFailures {
			t.Errorf("%s: the other's failures not counted", tc.name)
		}
	}
}

// TestTick: the clock watcher notes a gap between two of its ticks
// longer than the failure window less one interval, and no shorter one.
func TestTick(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		gap  time.Duration
		want bool
	}{
		{250 * time.Millisecond, false}, // a tick apart
		{2 * time.Second, false},        // the limit: 3 probes of 1 s, less one
		{2*time.Second + time.Millisecond, true},
		{30 * time.Second, true},
	} {
		p := &staticProvider{interval: time.Second, failures: 3, log: slog.New(slog.DiscardHandler)}
		p.tick(t0, t0.Add(tc.gap))
		if noted := !p.frozenAt.IsZero(); noted != tc.want {
			t.Errorf("gap %v: noted %v, want %v", tc.gap, noted, tc.want)
		}
	}
}
