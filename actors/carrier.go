package actors

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

// closeWriteTimeout bounds the final flush of a carrier that is closing.
const closeWriteTimeout = 2 * time.Second

// maxUnprocessed is how many frames a carrier's reader may have handed its
// Link that the Link has not taken yet. DATA is bounded by credit, but
// PINGs, OPENs and the like are not: without it a peer that sends them
// faster than the Link takes them would grow the Link's mailbox without
// end. At the bound the reader stops reading, and TCP pushes back.
const maxUnprocessed = 4096

// carrierActor owns one carrier connection: a reader goroutine decodes
// frames into pooled buffers and sends them to the Link; a writer
// goroutine, started while there is work for it, drains the queue the
// Scheduler fills (what push did not write at once), with one vectored
// write per batch, and ends once the queue is empty.
type carrierActor struct {
	env     *env
	id      int // unique within its Link
	conn    net.Conn
	reader  *engine.Reader
	version uint8
	link    *actor.PID
	sched   *actor.PID
	q       *frameQueue // made by the Link, which gives it to the Scheduler
	strand  *strand     // the link's: the reader runs what its frames cause
	once    sync.Once   // fail, writeFailed
	err     error       // the first error, set in fail or writeFailed
	// lingering: the writer failed first, and the reader reads out what
	// the peer sent before the carrier is closed (writeFailed); linger
	// closes it if the reader has not ended by then.
	lingering atomic.Bool
	linger    *time.Timer
	report    sync.Once // carrierDown
	// unprocessed counts the frames read and not yet taken by the Link
	// (maxUnprocessed at most); stop ends a reader waiting for room.
	unprocessed *backlog
	stop        chan struct{}
	// deadline guards the write deadline: each write may take
	// writeStall (none when 0) until the carrier closes, when the final
	// flush gets closeWriteTimeout and keeps it.
	deadline    sync.Mutex
	closed      atomic.Bool // closing: the final flush's deadline stays
	writeStall  time.Duration
	deadlineSet time.Time     // when the writer last moved the deadline (the writer's own)
	ws          writerScratch // the writer's (one runs at a time: frameQueue.writer)
}

func newCarrier(e *env, id int, conn net.Conn, r *engine.Reader, version uint8, link, sched *actor.PID, q *frameQueue, st *strand) *carrierActor {
	c := &carrierActor{env: e, id: id, conn: conn, reader: r, version: version, link: link, sched: sched, q: q, strand: st,
		unprocessed: newBacklog(maxUnprocessed), stop: make(chan struct{})}
	if e.cfg.Keepalive > 0 {
		c.writeStall = 3 * e.cfg.Keepalive
	}
	return c
}

// closeDeadline gives what is left to write closeWriteTimeout, for good.
func (c *carrierActor) closeDeadline() {
	c.deadline.Lock()
	c.closed.Store(true)
	_ = c.conn.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	c.deadline.Unlock()
}

// writeDeadline gives the next write writeStall, unless the carrier is
// closing. A peer that reads nothing for that long while this side has
// something for it is not reading at all (a live peer always reads its
// carrier: credit lets it keep what arrives): the write fails and the
// carrier goes, rather than holding what is queued for it for ever.
//
// The deadline is moved only once an eighth of writeStall has passed since
// it was last set, not for every batch: a write then still has at least
// seven eighths of writeStall, and the data path does not reset a timer
// per write.
func (c *carrierActor) writeDeadline() bool {
	if c.writeStall <= 0 || c.closed.Load() {
		return false
	}
	now := time.Now()
	if now.Sub(c.deadlineSet) < c.writeStall/8 {
		return true
	}
	c.deadline.Lock()
	defer c.deadline.Unlock()
	if c.closed.Load() {
		return false
	}
	_ = c.conn.SetWriteDeadline(now.Add(c.writeStall))
	c.deadlineSet = now
	return true
}

func (c *carrierActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.env.goroutine(c.readLoop)
		// The writer runs while the queue has work for it (push starts
		// it): an idle carrier has only its reader.
		c.q.setWriter(func() { c.env.goroutine(c.writeLoop) })
	case *carrierClose:
		c.closeDeadline()
		c.q.finish(m.last)
	case *actor.Stopping:
		close(c.stop)
		c.q.close()
		// Some carriers take time to close (a command is given a moment
		// to exit); never inside Receive.
		conn := c.conn
		c.env.goroutine(func() { conn.Close() })
	}
}

// fail records the carrier's first error and closes it. A protocol error
// is told to the peer first, in a GOAWAY: the writer sends it, closes the
// carrier and reports down; otherwise the carrier is closed and reported
// down at once.
func (c *carrierActor) fail(err error) {
	c.once.Do(func() {
		c.err = err
		if errors.Is(err, engine.ErrProtocol) {
			c.closeDeadline()
			c.q.finish(engine.NewReason(engine.TypeGoAway, 0, engine.CodeProtocol, err.Error()))
			return
		}
		c.q.close()
		c.conn.Close()
		c.reportDown()
	})
}

// writeFailed ends the carrier after a write failed with err. A peer that
// closed the carrier may have said why just before (its GOAWAY: shutting
// down), and a write of ours that crossed it fails (EPIPE, a reset) while
// that is still unread: closing at once would lose it, and an orderly end
// would be taken for a failure. So what is queued is dropped, but the
// reader goes on until the carrier ends (the peer closed it) or for
// closeWriteTimeout at most, and the carrier is reported down when it
// stops (readEnded), after every frame it read. A peer that reads nothing
// (errPeerNotReading), or a carrier that was closing anyway, is closed at
// once.
func (c *carrierActor) writeFailed(err error, stalled bool) {
	if stalled || c.closed.Load() {
		c.fail(err)
		c.reportDown()
		return
	}
	c.once.Do(func() {
		c.err = err
		c.q.close()
		// Reported down then even if the reader stays blocked: not every
		// carrier's Close ends a Read under way (a file that is not
		// polled).
		c.linger = time.AfterFunc(closeWriteTimeout, func() { c.conn.Close(); c.reportDown() })
		c.lingering.Store(true)
	})
	if !c.lingering.Load() { // the carrier had failed already
		c.reportDown()
	}
}

// readEnded ends the carrier after the reader met err; after writeFailed
// it closes it and reports it down, now that all it read went to the Link.
func (c *carrierActor) readEnded(err error) {
	c.fail(err) // once Do returns, lingering is what the first call made it
	if c.lingering.Load() {
		c.linger.Stop()
		c.conn.Close()
		c.reportDown()
	}
}

// reportDown tells the Link, once, that the carrier ended and why.
func (c *carrierActor) reportDown() {
	c.report.Do(func() { c.env.send(c.link, &carrierDown{id: c.id, err: c.err}) })
}

// readLoop reads frames and hands them to the Link. Each frame read
// blocking may be followed by others already in the read buffer; all of
// them go to the Link together, and the reader then runs the link's strand
// itself (unless a worker holds it already): the Link, and the Stream it
// hands DATA to, which writes it to its socket, run on this goroutine,
// woken once by the carrier's bytes, instead of waking a worker.
func (c *carrierActor) readLoop() {
	for {
		f, err := c.reader.ReadFrame()
		if err != nil {
			c.readEnded(err)
			return
		}
		if !c.unprocessed.add(c.stop) {
			f.Release()
			return
		}
		ran := c.strand.claim() // what is sent now waits for our run
		// Frames already buffered in whole go with it, in one message:
		// reading them cannot wait on the carrier while the strand is
		// held. Nor may the backlog's bound: at it, the strand's run
		// makes room first.
		var more []*engine.Frame
		for n := 1; n < maxBatchIn && c.reader.FrameBuffered() && c.unprocessed.tryAdd(); n++ {
			g, gerr := c.reader.ReadFrame()
			if gerr != nil {
				c.unprocessed.taken()
				err = gerr
				break
			}
			if more == nil {
				more = append(make([]*engine.Frame, 0, 8), f)
			}
			more = append(more, g)
		}
		c.deliver(f, more)
		if ran {
			c.strand.run(strandRunMax)
		}
		if err != nil {
			c.readEnded(err)
			return
		}
	}
}

// maxBatchIn is the most frames one message hands the Link.
const maxBatchIn = 256

// deliver hands the Link a frame read, or, when more is set, the frames
// more holds (f first among them).
func (c *carrierActor) deliver(f *engine.Frame, more []*engine.Frame) {
	if HopTracing {
		for _, g := range append([]*engine.Frame{f}, more...) {
			if g.Type == engine.TypeData {
				traceHop(hopCarrierRead)
			}
		}
	}
	if more != nil {
		c.env.send(c.link, &inFrames{carrier: c.id, frames: more, backlog: c.unprocessed})
		return
	}
	c.env.send(c.link, &inFrame{carrier: c.id, f: f, backlog: c.unprocessed})
}

// writerScratch is the writer's buffers, kept by the carrier from one of
// its writer goroutines to the next: a writer ends whenever the queue is
// empty (a link's carrier that is not a raw socket gets one per burst,
// on a net.Pipe about one per frame), and its successor would make them
// all again.
type writerScratch struct {
	frames []*engine.Frame
	bufs   net.Buffers
	hdrs   []byte
	flat   []byte
}

// keep keeps the writer's buffers for the next writer, those that are
// small: an idle carrier (a hub holds thousands) should not hold a large
// batch's.
func (w *writerScratch) keep(frames []*engine.Frame, bufs net.Buffers, hdrs, flat []byte) {
	clear(bufs) // they point into payloads that go back to the pool
	*w = writerScratch{}
	if cap(frames) <= keptFrames {
		w.frames, w.bufs, w.hdrs = frames[:0], bufs[:0], hdrs
	}
	if cap(flat) <= keptFlat {
		w.flat = flat[:0]
	}
}

// What of its buffers a writer keeps for the next (writerScratch.keep).
const (
	keptFrames = 256
	keptFlat   = 64 << 10
)

func (c *carrierActor) writeLoop() {
	frames, bufs, hdrs, flat := c.ws.frames, c.ws.bufs, c.ws.hdrs, c.ws.flat
	// TCP and unix sockets take a batch in one writev, a WebSocket in one
	// WriteBuffers; other carriers (pipes, devices, TLS) would get one
	// write per buffer, so the batch is copied into one buffer and written
	// once.
	vectored := false
	switch c.conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		vectored = true
	}
	bw, _ := c.conn.(buffersWriter)
	_, isTLS := c.conn.(*tls.Conn)
	split := !isTLS // one write is one record: a frame's header alone would be one
	for {
		var (
			off, owed      int
			drainedAll, ok bool
		)
		// Kept before each take: the take that ends this writer lets
		// the next start, which must find them (and this one must not
		// touch them after it).
		c.ws.keep(frames, bufs, hdrs, flat)
		frames, off, owed, drainedAll, ok = c.q.take(frames[:0])
		if !ok {
			return
		}
		data := HopTracing && hasData(frames) // a constant: nothing to do in other builds
		if data {
			traceHop(hopWriterTake)
		}
		if need := len(frames) * engine.MaxHeaderLen; cap(hdrs) < need {
			hdrs = make([]byte, need)
		}
		bufs = bufs[:0]
		total := 0
		for i, f := range frames {
			h := hdrs[i*engine.MaxHeaderLen : (i+1)*engine.MaxHeaderLen]
			n := f.PutHeader(h, c.version)
			bufs = append(bufs, h[:n])
			if f.Len() > 0 {
				bufs = append(bufs, f.Bytes())
			}
			total += f.WireLen()
		}
		total += owed - off         // owed: records sealed by push, which bw's write sends first
		out := skipBytes(bufs, off) // what an earlier write took of the first frame is not sent again
		stallable := c.writeDeadline()
		var err error
		if vectored {
			// WriteTo consumes the slice header it is given; keep ours.
			_, err = out.WriteTo(c.conn)
		} else if bw != nil {
			_, err = bw.WriteBuffers(out)
		} else {
			flat, err = writeFlat(c.conn, out, flat[:0], split)
			if cap(flat) > 4<<20 {
				flat = nil // do not keep a huge batch's buffer for ever
			}
		}
		if data {
			traceHop(hopCarrierWritten)
		}
		// A sequenced frame is also held by the Scheduler until the peer
		// acknowledges it; this releases the writer's share only.
		for i, f := range frames {
			f.Release()
			frames[i] = nil
		}
		c.q.written()
		if err != nil {
			stalled := stallable && errors.Is(err, os.ErrDeadlineExceeded)
			if stalled {
				err = fmt.Errorf("%w: it read nothing for %v", errPeerNotReading, c.writeStall)
			}
			c.writeFailed(err, stalled)
			return
		}
		c.env.send(c.sched, &drained{carrier: c.id, bytes: total})
		if drainedAll {
			c.conn.Close()
			c.fail(errCarrierClosed)
			c.reportDown()
			return
		}
	}
}

// directWriteMin is the least payload a carrier without writev (a pipe,
// a file, a QUIC stream) is given in a write of its own rather than
// copied into the batch's flat buffer: past it the copy costs more than
// the extra write.
const directWriteMin = 8 << 10

// writeFlat writes bufs to conn, a carrier without writev, in as few
// writes as it can without copying a large payload: the small pieces
// (headers, short payloads) go together in flat, which it returns for
// reuse, and, when split is set, each piece of directWriteMin bytes or
// more is written as it is.
func writeFlat(conn net.Conn, bufs net.Buffers, flat []byte, split bool) ([]byte, error) {
	for _, b := range bufs {
		if !split || len(b) < directWriteMin {
			flat = append(flat, b...)
			continue
		}
		if len(flat) > 0 {
			if _, err := conn.Write(flat); err != nil {
				return flat, err
			}
			flat = flat[:0]
		}
		if _, err := conn.Write(b); err != nil {
			return flat, err
		}
	}
	if len(flat) == 0 {
		return flat, nil
	}
	_, err := conn.Write(flat)
	return flat, err
}

// buffersWriter writes a list of buffers as one, in one call: a carrier
// (carriers' WebSocket), or a stream's socket (*rawsock.Conn, with
// writev, which net.Buffers.WriteTo does only for net's own connections:
// for any other it makes one write per buffer).
type buffersWriter interface {
	WriteBuffers(bufs [][]byte) (int, error)
}

// errCarrierClosed is the reason of a carrier closed by this side.
var errCarrierClosed = errors.New("closed by this side")

// skipBytes drops the first n bytes of bufs.
func skipBytes(bufs net.Buffers, n int) net.Buffers {
	for n > 0 && len(bufs) > 0 {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			return bufs
		}
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	return bufs
}
