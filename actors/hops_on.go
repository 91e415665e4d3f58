//go:build hoptrace

package actors

import (
	"sync"
	"time"
)

// HopTracing says whether this build records HopEvents (-tags hoptrace).
const HopTracing = true

// maxHopEvents bounds what a hop-traced process keeps.
const maxHopEvents = 4 << 20

var hops struct {
	mu sync.Mutex
	ev []HopEvent
}

// traceHop records that a DATA frame's bytes passed stage s now.
func traceHop(s HopStage) {
	t := time.Now().UnixNano()
	hops.mu.Lock()
	if len(hops.ev) < maxHopEvents {
		hops.ev = append(hops.ev, HopEvent{Stage: s, At: t})
	}
	hops.mu.Unlock()
}

// HopEvents returns the events recorded so far and forgets them.
func HopEvents() []HopEvent {
	hops.mu.Lock()
	defer hops.mu.Unlock()
	ev := hops.ev
	hops.ev = nil
	return ev
}
