package actors

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

// Messages between the actors and their goroutines. All are sent as
// pointers with Send. A message holding a buffer, a frame or a socket
// hands it over, and has a release method (a holder) that frees what it
// holds when it cannot be delivered.

// inFrame is a frame read by a carrier's reader, tagged with the carrier's
// id so a Link can drop what a dead carrier read.
type inFrame struct {
	carrier int
	f       *engine.Frame
	// backlog is told when the Link has taken the frame (nil: not
	// counted).
	backlog *backlog
	// held is set when the Link hands the message on to the Scheduler,
	// its frame taken (f nil): what of the backlog the Scheduler lets go
	// of once it has taken what came before (linkActor.heldUntilScheduled).
	held int64
}

func (m *inFrame) release() {
	if m.f != nil {
		m.f.Release()
	}
}

// inFrames are frames a carrier's reader read together, in order: what
// one read of the carrier brought, handed over in one message.
type inFrames struct {
	carrier int
	frames  []*engine.Frame
	backlog *backlog // told as the Link takes each
	held    int64    // as inFrame's, its frames taken (all nil)
}

func (m *inFrames) release() {
	for _, f := range m.frames {
		if f == nil {
			continue
		}
		f.Release()
	}
}

// carrierDown reports that a carrier's connection ended, and why.
type carrierDown struct {
	id  int
	err error
}

// carrierAttached gives the Scheduler a carrier's outgoing queue; first
// (may be nil) goes out on it before anything else.
type carrierAttached struct {
	id    int
	q     *frameQueue
	first *engine.Frame
}

func (m *carrierAttached) release() {
	if m.first != nil {
		m.first.Release()
	}
}

// carrierGone tells the Scheduler a carrier is gone: what it carried and
// the peer did not acknowledge goes out again on the others.
type carrierGone struct{ id int }

// drained tells the Scheduler a carrier wrote bytes of what it was given.
type drained struct {
	carrier int
	bytes   int
}

// pinned asks the Scheduler to send f, a carrier's own frame (ACK, PING,
// PONG), on that carrier, before what is waiting.
type pinned struct {
	carrier int
	f       *engine.Frame
}

func (m *pinned) release() { m.f.Release() }

// ackIn is an ACK the peer sent on a carrier.
type ackIn struct {
	carrier int
	ack     engine.Ack
}

// pathRTT is a round trip a carrier's PING measured.
type pathRTT struct {
	carrier int
	rtt     time.Duration
}

// stallTick asks the Scheduler to look for stalled carriers.
type stallTick struct{}

// schedFailed tells the Link the peer broke the sequencing protocol (an
// ACK of what was never sent), or, with overload, that it lets replies
// pile up unread.
type schedFailed struct {
	err      error
	overload bool
}

// carrierJoin hands a Link a carrier that was accepted, authenticated and
// asked to join it.
type carrierJoin struct {
	done *handshakeDone
}

func (m *carrierJoin) release() { m.done.release() }

// joinRetry asks an accepting Link to look up a join's link again.
type joinRetry struct {
	done    *handshakeDone
	attempt int
}

func (m *joinRetry) release() { m.done.release() }

// resumeExpired says a link's resume window is over.
type resumeExpired struct{ gen uint64 }

// ackTick asks a Link to acknowledge what arrived since its last ACKs.
type ackTick struct{}

// carrierClose asks a Carrier to send last (a GOAWAY; may be nil) after
// what is queued and then close.
type carrierClose struct{ last *engine.Frame }

func (m *carrierClose) release() {
	if m.last != nil {
		m.last.Release()
	}
}

// handshakeDone carries the result of a carrier's HELLO exchange.
type handshakeDone struct {
	conn   net.Conn
	reader *engine.Reader
	params engine.Params
	authed bool // the peer proved who it is (key or TLS certificate)
	sealed bool // conn is sealed: the Noise channel (keyed carriers)
	// peerKey is the peer's static key (identity handshakes).
	peerKey []byte
	// link is the peer's link extensions (CapSeq links only).
	link engine.LinkHello
	// joinAck is the accepter's answer to our join: what it had received.
	joinAck engine.Ack
	err     error
}

func (m *handshakeDone) release() { m.conn.Close() }

// dialDone carries the result of a Link's carrier dial, to the address at
// of its failover list.
type dialDone struct {
	conn net.Conn
	err  error
	at   int
}

func (m *dialDone) release() {
	if m.conn != nil {
		m.conn.Close()
	}
}

// redialTick asks a dialling Link to dial again.
type redialTick struct{}

// openRequest asks a Link to carry conn, accepted by a forward, to target.
type openRequest struct {
	conn     net.Conn
	kind     engine.TargetKind
	target   string
	forward  string
	datagram bool        // conn carries datagrams: one read, one frame
	first    []byte      // bytes already read from conn; they ride in OPEN
	reply    *proxyReply // a -D client waiting for its proxy reply
	opened   chan error  // told nil on OPEN_OK, the reason otherwise (buffered)
	// load, for a pooled reverse forward's connection, is its member's
	// count of open streams, already counting this one: the stream takes
	// it off when it ends, and a request that opens no stream at once.
	load *atomic.Int32
}

func (m *openRequest) release() { m.conn.Close(); m.unload() }

// unload takes the request off its pool member's load, when it opens no
// stream.
func (m *openRequest) unload() {
	if m.load != nil {
		m.load.Add(-1)
		m.load = nil
	}
}

// streamEnded tells the Link a stream has ended on the wire (FIN both
// ways, or RST): it no longer counts against the stream limit, though its
// socket may still be closing.
type streamEnded struct{ id uint32 }

// linkDown tells a Stream its link is gone: close the socket, send nothing.
type linkDown struct{}

// shutdown asks a Link to say GOAWAY, let its streams finish for up to
// drain, and close.
type shutdown struct{ drain time.Duration }

// drainOver says a shutting-down Link's drain time is up.
type drainOver struct{ gen uint64 }

// keepaliveTick asks a Link to PING and to check that the peer is alive.
type keepaliveTick struct{ gen uint64 }

// redialRequest asks a dialling Link that is waiting to redial to dial now.
type redialRequest struct{}

// linkAvailable tells a Listener a link came up.
type linkAvailable struct{}

// openTimeoutTick asks a Listener to give up on connections that waited
// too long for a link.
type openTimeoutTick struct{}

// streamAttached tells the Scheduler a stream can send, and how much of its
// initial window the first bytes used; conn is the actor that gets the
// stream's grants (the Stream actor, which reads its socket). The Link
// sends it with the OPEN of a stream this side opens (open: one message
// for the frame, the declaration and the attachment, which always go
// together); an accepter's Stream with its OPEN_OK (ok), when it sends
// one then.
type streamAttached struct {
	id       uint32
	conn     *actor.PID
	used     int
	open, ok *engine.Frame
}

func (m *streamAttached) release() {
	for _, f := range []*engine.Frame{m.open, m.ok} {
		if f != nil {
			f.Release()
		}
	}
}

// streamDeclared tells the Scheduler, from the Link, that stream id exists (its
// OPEN was sent or taken): CREDITs for it count from now on, even before
// its Stream attaches.
type streamDeclared struct{ id uint32 }

// creditBack gives the Scheduler back n bytes of a stream's grant its
// reader will not use soon (its socket is idle, or its reading ended), for
// the link's other streams.
type creditBack struct {
	id uint32
	n  int64
}

// streamGone tells the Scheduler a stream is gone.
type streamGone struct{ id uint32 }

// creditIn is a CREDIT the peer sent for stream id.
type creditIn struct{ id, n uint32 }

// grant gives a stream n more bytes of send credit: its socket may be
// read for that many more.
type grant struct{ n int64 }

// dataIn is what a stream's reading goroutine found before it ended: the
// socket became readable (no bytes, no error), bytes it read from a socket
// with no file descriptor (one buffer per frame, in order; the message
// hands them over), and or the end of reading (err).
type dataIn struct {
	bufs []*engine.Buffer
	err  error
}

func (m *dataIn) release() {
	for _, b := range m.bufs {
		engine.PutBuffer(b)
	}
}

// dataOut is a stream's DATA frames, handed to the Scheduler together so
// the carrier can send them with one write.
type dataOut struct{ frames []*engine.Frame }

func (m *dataOut) release() {
	for _, f := range m.frames {
		f.Release()
	}
}

// wrote says a stream's writer goroutine wrote n bytes to its socket, with
// queued bytes still waiting.
type wrote struct{ n, queued int }

// writerExit says a stream's writer goroutine ended: its queue was empty
// (and shut says it shut the socket's write side), or a write failed (err).
type writerExit struct {
	shut bool
	err  error
}

// accepted is a connection a Listener's accept loop took, or one
// Node.DialStream made, with its own target.
type accepted struct {
	conn   net.Conn
	target string      // "" for the forward's own target
	first  []byte      // bytes already read from conn (a proxy client's)
	reply  *proxyReply // a -D client waiting for its proxy reply
	opened chan error  // DialStream waiting for the peer's answer (buffered)
}

func (m *accepted) release() { m.conn.Close() }

// statusReq asks a Link for its LinkStatus (answered with Respond; not on
// the data path).
type statusReq struct{}

// carrierStatusReq asks a Scheduler to fill in, for the carriers ids, what
// it knows of each in ls.PerCarrier (in the same order), then to answer
// ls to the sender (a statusReq's asker). It only reads.
type carrierStatusReq struct {
	ids []int
	ls  *LinkStatus
}
