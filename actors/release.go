package actors

import "github.com/sockmux/sockmux/engine"

// releaseMessage frees what a message sent to an actor that had already
// stopped was carrying: its buffer goes back to the pool, its socket is
// closed. Without it a message racing an actor's end would leak them.
func releaseMessage(msg any) {
	switch m := msg.(type) {
	case *engine.Frame:
		m.Release()
	case *inFrame:
		m.f.Release()
	case *inFrames:
		for _, f := range m.frames {
			f.Release()
		}
	case *dataIn:
		for _, b := range m.bufs {
			engine.PutBuffer(b)
		}
	case *dataOut:
		for _, f := range m.frames {
			f.Release()
		}
	case *closeCarrier:
		if m.last != nil {
			m.last.Release()
		}
	case *openStream:
		m.conn.Close()
	case *accepted:
		m.conn.Close()
	case *dialDone:
		if m.conn != nil {
			m.conn.Close()
		}
	case *handshakeDone:
		m.conn.Close()
	case *joinCarrier:
		m.done.conn.Close()
	case *retryJoin:
		m.done.conn.Close()
	case *pinned:
		m.f.Release()
	case *carrierAttached:
		if m.first != nil {
			m.first.Release()
		}
	default:
		releaseShareMessage(msg)
	}
}
