package actors

import (
	"runtime/debug"
	"time"
)

// reclaimEvery is the least time between two reclaims.
const reclaimEvery = 10 * time.Second

// reclaim hands the memory the process no longer uses back to the OS, at
// most once per reclaimEvery: after a link that held a lot (a peer that
// stopped reading, then left), the Go runtime would otherwise keep it
// resident for minutes, until a GC and its scavenger got round to it.
func (e *env) reclaim() {
	now := time.Now().UnixNano()
	last := e.lastReclaim.Load()
	if now-last < int64(reclaimEvery) || !e.lastReclaim.CompareAndSwap(last, now) {
		return
	}
	e.goroutine(debug.FreeOSMemory)
}
