//go:build race

package main

// raceEnabled says the race detector is on: it multiplies a process's
// memory several times over, so resident-memory bounds do not hold.
const raceEnabled = true
