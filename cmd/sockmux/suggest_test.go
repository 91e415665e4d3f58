package main

import (
	"strconv"
	"testing"
)

func TestDidYouMean(t *testing.T) {
	cands := []string{"local", "remote", "dynamic", "max-streams", "max-binds"}
	for _, tc := range []struct{ name, want string }{
		{"lokal", `; did you mean "local"?`},
		{"remot", `; did you mean "remote"?`},
		{"max-stream", `; did you mean "max-streams"?`},
		{"local", ""}, // not a typo
		{"xyz", ""},   // nothing close
		{"lo", ""},    // too short to guess from
	} {
		if got := didYouMean(tc.name, cands, strconv.Quote); got != tc.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
