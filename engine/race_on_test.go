//go:build race

package engine

// raceEnabled says the race detector is on: it slows the simulator ten
// times over, so it runs fewer seeds (the engine has no goroutines to
// race; the seeds run without it in go test ./engine).
const raceEnabled = true
