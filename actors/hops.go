package actors

import "github.com/sockmux/sockmux/engine"

// HopStage is a point on the data path that a hop-traced build
// (go build -tags hoptrace) timestamps each time a DATA frame's bytes pass
// it: the per-hop breakdown of a round trip in BENCHMARKS.md is the time
// between consecutive stages, on both peers (bench's BenchmarkRedisHops).
// In other builds recording is an empty function the compiler drops.
type HopStage uint8

// The stages, in the order a stream's bytes pass them on their way from
// one peer's local socket to the other's.
const (
	// hopSocketRead: a stream read bytes from its local socket.
	hopSocketRead HopStage = iota + 1
	// hopStreamIn: the Stream actor took what its reading goroutine read.
	hopStreamIn
	// hopSchedIn: the Scheduler took the stream's DATA.
	hopSchedIn
	// hopCarrierQueued: DATA reached the carrier's queue, or was written
	// at once.
	hopCarrierQueued
	// hopWriterTake: the carrier's writer goroutine took DATA from its
	// queue.
	hopWriterTake
	// hopCarrierWritten: a carrier write holding DATA returned.
	hopCarrierWritten
	// hopCarrierRead: the carrier's reader decoded a DATA frame.
	hopCarrierRead
	// hopLinkIn: the Link took a DATA frame.
	hopLinkIn
	// hopStreamFrame: the Stream actor took a DATA frame.
	hopStreamFrame
	// hopSocketWritten: a write of DATA to the stream's socket returned.
	hopSocketWritten

	// A new connection's stages, before its first DATA.

	// hopAccepted: a forward's accept loop took a connection.
	hopAccepted
	// hopListenerIn: the Listener actor took it.
	hopListenerIn
	// hopSchedOpen: the Scheduler took an OPEN.
	hopSchedOpen
	// hopOpenIn: the Link took an OPEN from a carrier.
	hopOpenIn
	// hopDialStart: the new stream starts dialling its target.
	hopDialStart
	// hopDialed: the Stream actor took the dial's result.
	hopDialed
	// hopOpenOKIn: the Link took an OPEN_OK from a carrier.
	hopOpenOKIn
)

var hopNames = [...]string{"", "socket read", "stream took read", "scheduler took DATA", "carrier queued",
	"writer took DATA", "carrier written", "carrier read", "link took DATA", "stream took DATA", "socket written",
	"accepted", "listener took it", "scheduler took OPEN", "link took OPEN", "dial started", "stream took dial", "link took OPEN_OK"}

// String names the stage as the breakdown's tables do.
func (s HopStage) String() string {
	if int(s) < len(hopNames) {
		return hopNames[s]
	}
	return "?"
}

// HopEvent is one timestamp of a hop-traced build: a stage and when it
// was passed, in Unix nanoseconds (the wall clock, which the processes of
// one machine share, so two peers' events can be merged).
type HopEvent struct {
	Stage HopStage
	At    int64
}

// hasData says whether frames hold a DATA frame.
func hasData(frames []*engine.Frame) bool {
	for _, f := range frames {
		if f.Type == engine.TypeData {
			return true
		}
	}
	return false
}
