package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"sockmux/engine"
)

// carrierHighWater is how many bytes the Scheduler lets sit in a carrier's
// queue. Past it frames wait in the Scheduler, where control frames can
// still overtake data and streams take turns.
const carrierHighWater = 256 << 10

// schedulerActor is the sole owner of a link's send credit and of the
// order in which frames go out. It grants each stream's Connection the
// credit the peer gave (the reader reads no more than that), queues frames
// by engine.Queue's policy, and feeds the carrier while it is below its
// high-water mark.
type schedulerActor struct {
	env      *env
	params   engine.Params
	queue    *engine.Queue
	out      *frameQueue
	inflight int
	batch    []*engine.Frame
	streams  map[uint32]*sendState
}

type sendState struct {
	win  engine.SendWindow
	conn *actor.PID
}

func newScheduler(e *env, p engine.Params) *schedulerActor {
	return &schedulerActor{env: e, params: p, queue: engine.NewQueue(), streams: make(map[uint32]*sendState)}
}

func (s *schedulerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *dataOut:
		for _, f := range m.frames {
			s.enqueue(f)
		}
		s.pump()
	case *engine.Frame:
		s.enqueue(m)
		s.pump()
	case *drained:
		s.inflight -= m.bytes
		s.pump()
	case *attach:
		st := &sendState{win: engine.NewSendWindow(s.params.SendWindow), conn: m.conn}
		st.win.Take(m.used)
		s.streams[m.id] = st
		if n := st.win.Avail(); n > 0 {
			s.env.send(m.conn, &grant{n: n})
		}
	case *creditIn:
		st := s.streams[m.id]
		if st == nil {
			return // the stream ended while the CREDIT was on the wire
		}
		if err := st.win.Add(m.n); err != nil {
			s.env.log.Warn("peer over-credited a stream", "stream", m.id, "err", err)
			return
		}
		s.env.send(st.conn, &grant{n: int64(m.n)})
	case *forget:
		delete(s.streams, m.id)
	case *carrierAttached:
		s.out = m.q
		s.pump()
	case *actor.Stopping:
		for _, f := range s.queue.DropAll() {
			f.Release()
		}
	}
}

func (s *schedulerActor) enqueue(f *engine.Frame) {
	switch f.Type {
	case engine.TypeData:
		// The reader read no more than its grant, so this cannot fail
		// unless the stream is already forgotten (it was reset).
		st := s.streams[f.Stream]
		if st == nil || !st.win.Take(f.Len()) {
			f.Release()
			return
		}
		s.env.stats.BytesOut.Add(int64(f.Len()))
	case engine.TypeRst:
		for _, d := range s.queue.Drop(f.Stream) {
			d.Release()
		}
		delete(s.streams, f.Stream)
	}
	s.queue.Push(f)
}

func (s *schedulerActor) pump() {
	if s.out == nil {
		return
	}
	for s.inflight < carrierHighWater {
		f := s.queue.Pop()
		if f == nil {
			break
		}
		s.inflight += f.WireLen()
		s.batch = append(s.batch, f)
	}
	if len(s.batch) > 0 {
		s.out.push(s.batch)
		clear(s.batch)
		s.batch = s.batch[:0]
	}
}
