package engine

// Queue is the scheduling policy for one link's outgoing frames: control
// frames first, in arrival order; then the streams with frames waiting, one
// frame each in turn, so a busy stream cannot starve a quiet one. DATA and
// FIN of one stream keep their order. It is not safe for concurrent use: the
// Scheduler actor owns it.
type Queue struct {
	ctrl    fifo
	streams map[uint32]*fifo
	ring    []uint32 // streams with frames waiting, in turn order
	head    int
	frames  int
	bytes   int
	replies int     // wire bytes of the control frames waiting that are not requests
	spare   []*fifo // emptied stream queues, for reuse
}

// isReply says whether f answers or acknowledges the peer (everything
// control but this side's own requests, OPEN and BIND, which its own
// limits bound).
func isReply(f *Frame) bool {
	return f.Type != TypeOpen && f.Type != TypeBind && f.Type != TypeUnbind
}

// NewQueue returns an empty queue.
func NewQueue() *Queue { return &Queue{streams: make(map[uint32]*fifo)} }

// Push adds f; the queue owns it until Pop returns it.
func (q *Queue) Push(f *Frame) {
	q.frames++
	q.bytes += f.WireLen()
	if f.Type.Control() {
		if isReply(f) {
			q.replies += f.WireLen()
		}
		q.ctrl.push(f)
		return
	}
	s := q.streams[f.Stream]
	if s == nil {
		if n := len(q.spare); n > 0 { // an emptied one, with its slice: no allocation a message
			s = q.spare[n-1]
			q.spare[n-1] = nil
			q.spare = q.spare[:n-1]
		} else {
			s = &fifo{}
		}
		q.streams[f.Stream] = s
	}
	if s.len() == 0 {
		q.ring = append(q.ring, f.Stream)
	}
	s.push(f)
}

// Pop removes and returns the next frame to send, or nil.
func (q *Queue) Pop() *Frame {
	if f := q.ctrl.pop(); f != nil {
		if isReply(f) {
			q.replies -= f.WireLen()
		}
		q.account(f)
		return f
	}
	for q.head < len(q.ring) {
		id := q.ring[q.head]
		q.head++
		s := q.streams[id]
		if s == nil || s.len() == 0 {
			continue // dropped since it was queued
		}
		return q.took(id, s)
	}
	q.ring, q.head = q.ring[:0], 0
	return nil
}

// Peek returns the frame Pop would return, leaving it queued, or nil.
func (q *Queue) Peek() *Frame {
	if f := q.ctrl.peek(); f != nil {
		return f
	}
	for ; q.head < len(q.ring); q.head++ {
		if s := q.streams[q.ring[q.head]]; s != nil && s.len() > 0 {
			return s.peek()
		}
	}
	return nil
}

// smallScan is how many streams' turns PopSmall looks at.
const smallScan = 64

// PopSmall removes and returns the first frame, in the order Pop would
// take them, of at most max wire bytes, looking no further than the next
// smallScan streams' turns; nil when there is none. The Scheduler takes it
// when the next frame is too big to send yet: a small one (a request, an
// interactive stream's keystroke) need not wait behind it. A stream keeps
// its frames' order; one whose frame is taken this way goes to the back.
// Stream skip (0: none) is passed over: the caller holds a frame of it
// that must go first.
func (q *Queue) PopSmall(max int, skip uint32) *Frame {
	if f := q.ctrl.peek(); f != nil {
		if f.WireLen() > max {
			return nil
		}
		return q.Pop()
	}
	for i := q.head; i < len(q.ring) && i < q.head+smallScan; i++ {
		id := q.ring[i]
		s := q.streams[id]
		if s == nil || s.len() == 0 || s.peek().WireLen() > max || (skip != 0 && id == skip) {
			continue
		}
		q.ring = append(q.ring[:i], q.ring[i+1:]...)
		return q.took(id, s)
	}
	return nil
}

// took pops stream id's next frame, its turn in the ring taken: the
// stream goes to the back if it has more.
func (q *Queue) took(id uint32, s *fifo) *Frame {
	f := s.pop()
	if s.len() > 0 {
		q.ring = append(q.ring, id)
	} else {
		delete(q.streams, id)
		if len(q.spare) < maxSpareFifos && cap(s.items) <= maxSpareItems {
			q.spare = append(q.spare, s)
		}
	}
	q.compact()
	q.account(f)
	return f
}

// Drop removes every frame waiting for stream id (it was reset) and returns
// them so the caller can release their buffers.
func (q *Queue) Drop(id uint32) []*Frame {
	s := q.streams[id]
	if s == nil {
		return nil
	}
	delete(q.streams, id)
	out := s.drain()
	for _, f := range out {
		q.account(f)
	}
	return out
}

// DropAll empties the queue and returns every frame in it.
func (q *Queue) DropAll() []*Frame {
	out := q.ctrl.drain()
	for id := range q.streams {
		out = append(out, q.Drop(id)...)
	}
	q.frames, q.bytes, q.replies, q.ring, q.head = 0, 0, 0, q.ring[:0], 0
	return out
}

// Len is the number of frames waiting.
func (q *Queue) Len() int { return q.frames }

// Bytes is the wire size of the frames waiting.
func (q *Queue) Bytes() int { return q.bytes }

// ReplyBytes is the wire size of the control frames waiting other than
// this side's requests: replies and credit, which a peer that floods
// requests and does not read lets pile up.
func (q *Queue) ReplyBytes() int { return q.replies }

func (q *Queue) account(f *Frame) {
	q.frames--
	q.bytes -= f.WireLen()
}

// compact drops the consumed prefix of the ring once it is most of it, so
// the ring does not grow without bound.
func (q *Queue) compact() {
	if q.head > 64 && q.head*2 > len(q.ring) {
		n := copy(q.ring, q.ring[q.head:])
		q.ring, q.head = q.ring[:n], 0
	}
}

// A Queue keeps up to maxSpareFifos emptied stream queues, each of at most
// maxSpareItems frames' room, for the next streams to send.
const (
	maxSpareFifos = 64
	maxSpareItems = 64
)

// fifo is a queue of frames on a slice with a moving head.
type fifo struct {
	items []*Frame
	head  int
}

func (f *fifo) len() int { return len(f.items) - f.head }

func (f *fifo) push(fr *Frame) { f.items = append(f.items, fr) }

func (f *fifo) peek() *Frame {
	if f.head == len(f.items) {
		return nil
	}
	return f.items[f.head]
}

func (f *fifo) pop() *Frame {
	if f.head == len(f.items) {
		return nil
	}
	fr := f.items[f.head]
	f.items[f.head] = nil
	f.head++
	switch {
	case f.head == len(f.items):
		f.items, f.head = f.items[:0], 0
	case f.head > 64 && f.head*2 > len(f.items):
		// A queue that never empties must not grow by what it sent.
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	return fr
}

func (f *fifo) drain() []*Frame {
	out := append([]*Frame(nil), f.items[f.head:]...)
	clear(f.items)
	f.items, f.head = f.items[:0], 0
	return out
}
