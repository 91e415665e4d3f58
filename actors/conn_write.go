package actors

// The write side of a Stream's socket: what the peer sent, written at once
// where the socket takes it, queued for a writer goroutine where not; the
// half-close after it.

import (
	"errors"
	"net"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
)

// output takes b, bytes from the peer for the socket: the running writer
// gets it, or it waits in out for the flush at the end of the mailbox run
// (or, while dialling, for the socket). b is the stream's
// until it is written, then returned to the pool, or queued, then the
// queue's.
func (s *streamActor) output(ctx actor.Context, b *engine.Buffer) {
	if s.closed || s.writeDone || s.finQueued {
		engine.PutBuffer(b)
		return
	}
	if s.wq != nil && s.netConn != nil && s.wq.push(b) { // the writer runs: it takes b
		return
	}
	if k := len(s.out); k > 0 && !s.datagram && len(b.B) <= coalesceMax && cap(s.out[k-1].B)-len(s.out[k-1].B) >= len(b.B) {
		// Small DATA shares the tail's buffer: a run of tiny frames
		// pins no buffer each.
		t := s.out[k-1]
		t.B = append(t.B, b.B...)
		engine.PutBuffer(b)
		return
	}
	s.out = append(s.out, b) // written when this mailbox run is over (runOver)
}

// runOver writes what the mailbox run collected for the socket: the DATA
// that arrived together leaves with one writev.
func (s *streamActor) runOver(ctx actor.Context) {
	if len(s.out) > 0 && !s.closed {
		s.flush(ctx)
	}
}

// writeNow writes what of bufs the socket takes without waiting, with one
// writev (a datagram a write, whole or not at all); nothing on a socket
// with no file descriptor. It returns the bytes written and how many of
// bufs went whole.
func (s *streamActor) writeNow(bufs []*engine.Buffer) (int, int, error) {
	if s.raw == nil {
		return 0, 0, nil
	}
	return s.io().write(s.raw, bufs)
}

// writeLoop is a stream's writer goroutine: it writes what the queue holds
// until the queue is empty, shuts the write side if the queue says so,
// and ends. It owns the buffers it took from the queue and returns them to
// the pool once written (or not).
func writeLoop(env *env, self *actor.PID, conn net.Conn, q *writeQueue, datagram bool) {
	var (
		bufs []*engine.Buffer
		nb   net.Buffers
		exit writerExit
	)
	defer func() { env.send(self, &exit) }()
	for {
		var fin, ok bool
		bufs, fin, ok = q.take(bufs[:0])
		if !ok {
			return
		}
		if len(bufs) > 0 {
			nb = nb[:0]
			total := 0
			for _, b := range bufs {
				nb = append(nb, b.B)
				total += len(b.B)
			}
			var err error
			if datagram { // one write per datagram: writev would merge them
				for _, b := range nb {
					if _, err = conn.Write(b); err != nil {
						break
					}
				}
			} else {
				w := nb
				if bw, ok := conn.(buffersWriter); ok { // *rawsock.Conn: writev, as WriteTo does for net's own
					_, err = bw.WriteBuffers(w)
				} else {
					_, err = w.WriteTo(conn)
				}
			}
			traceHop(hopSocketWritten)
			clear(nb)
			putAll(bufs)
			queued := q.written(total)
			if err != nil {
				exit.err = err
				return
			}
			env.send(self, &wrote{n: total, queued: queued})
			continue
		}
		if fin {
			shutWrite(conn)
			exit.shut = true
		}
		return
	}
}

// writerExit takes the end of a writer goroutine.
func (s *streamActor) writerExit(ctx actor.Context, m *writerExit) {
	s.running--
	if m.shut {
		s.writeDone = true
	}
	if m.err != nil {
		s.writeFailed(ctx, m.err)
	}
	s.maybeClosed(ctx)
}

// writeFailed ends writing: the stream is reset.
func (s *streamActor) writeFailed(ctx actor.Context, err error) {
	s.writeDone = true
	if !errors.Is(err, net.ErrClosed) {
		s.env.log.Debug("stream socket error", "stream", s.id, "target", s.target, "write", true, "err", err)
		s.reset(ctx, engine.CodeCancelled, err.Error())
	}
	s.maybeClosed(ctx)
}

// closeWrite shuts the socket's write side after what is queued: the peer
// sent FIN.
func (s *streamActor) closeWrite(ctx actor.Context) {
	if s.closed || s.writeDone || s.finQueued {
		return
	}
	if s.netConn == nil {
		s.pendingFin = true
		return
	}
	s.flush(ctx) // what came before FIN goes first
	if s.closed || s.writeDone {
		return
	}
	if s.wq != nil && s.wq.finish() { // the writer shuts it after the last buffer
		s.finQueued = true
		return
	}
	shutWrite(s.netConn)
	s.writeDone = true
	s.maybeClosed(ctx)
}

// closeAfter writes b, the last words (a proxy client's failure reply),
// then closes: reading stops now.
func (s *streamActor) closeAfter(ctx actor.Context, b *engine.Buffer) {
	s.output(ctx, b)
	s.closeWrite(ctx)
	s.stopReading()
	s.maybeClosed(ctx)
}
