//go:build !race

package cluster

import "testing"

// needNoRace: without the race detector every test runs.
func needNoRace(testing.TB) {}
