package engine

// Liveness: a carrier is alive while frames come on it. Any frame counts,
// so a busy carrier whose PONG is late is never taken for dead; a carrier
// on which nothing at all came for SilentTicks keepalive intervals is.

// SilentTicks is how many keepalive intervals without a frame make a
// carrier silent: dead.
const SilentTicks = 3

// Silence watches one carrier between keepalive ticks.
type Silence struct {
	frames uint64 // frames heard
	seen   uint64 // frames at the last tick
	ticks  int    // ticks in a row with nothing heard
}

// Heard counts a frame that came on the carrier.
func (s *Silence) Heard() { s.frames++ }

// Tick ends a keepalive interval: true when nothing came for SilentTicks
// intervals in a row; false means PING it and wait.
func (s *Silence) Tick() (silent bool) {
	if s.frames == s.seen {
		s.ticks++
	} else {
		s.ticks, s.seen = 0, s.frames
	}
	return s.ticks >= SilentTicks
}

// SilentVerdict is what a silent carrier costs.
type SilentVerdict uint8

const (
	// DropCarrier: the link goes on without it (it may resume).
	DropCarrier SilentVerdict = iota
	// DropLink: the carrier was the link; it goes, with a GOAWAY
	// (CodeTimeout) saying why.
	DropLink
)

// OnSilent decides what a silent carrier costs: on a sequenced link that
// is not ending, only that carrier (what was on it is sent again on
// another, or when the link resumes); otherwise the link.
func OnSilent(sequenced, ending bool) SilentVerdict {
	if sequenced && !ending {
		return DropCarrier
	}
	return DropLink
}
