//go:build !race

package actors

// raceEnabled says the race detector is on: it slows the node several
// times over, so the floods are smaller.
const raceEnabled = false
