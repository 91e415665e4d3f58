package actors

import (
	"strings"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestFailoverRule drives a failover list through attempts that fail (f),
// sessions lost for good (l) and sessions up (u), and checks after each
// the address in use, and for a failed attempt whether the next is dialled
// at once or after the backoff.
func TestFailoverRule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		addrs  int
		events string
		want   string // after each event: the address in use, and "now" or "wait" for an f
	}{
		{"one address never moves and always waits", 1, "fflf", "0wait 0wait 0 0wait"},
		{"two at the start: the second at once, then a round's backoff", 2, "fff", "1now 0wait 1now"},
		{"three at the start: a round at once, then the backoff", 3, "ffff", "1now 2now 0wait 1now"},
		{"a lost link moves on and starts a round there", 3, "ulfff", "0 1 2now 0now 1wait"},
		{"after the last, the first", 2, "ulul", "0 1 1 0"},
		{"a session up ends the round", 3, "fufff", "1now 1 2now 0now 1wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := failover{}
			for range tc.addrs {
				f.dialers = append(f.dialers, testkit.NewPipeCarrier())
			}
			var got []string
			for _, ev := range tc.events {
				s := ""
				switch ev {
				case 'f':
					if f.attemptFailed() {
						s = "now"
					} else {
						s = "wait"
					}
				case 'l':
					f.sessionLost()
				case 'u':
					f.sessionUp()
				}
				got = append(got, string(rune('0'+f.at))+s)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Fatalf("after %q: %s, want %s", tc.events, g, tc.want)
			}
			if f.current() != f.dialers[f.at] {
				t.Fatal("current is not the address in use")
			}
		})
	}
}
