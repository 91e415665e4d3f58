//go:build !hoptrace

package actors

// HopTracing says whether this build records HopEvents (-tags hoptrace).
const HopTracing = false

// traceHop records nothing in this build.
func traceHop(HopStage) {}

// HopEvents returns the events recorded so far: none in this build.
func HopEvents() []HopEvent { return nil }
