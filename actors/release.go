package actors

import "github.com/sockmux/sockmux/engine"

// holder is a message that holds a pooled buffer, a frame or a socket.
// Its release method, beside the message's type, frees what it holds.
type holder interface{ release() }

// releaseMessage frees what a message sent to an actor that had already
// stopped was carrying: its buffer goes back to the pool, its socket is
// closed. Without it a message racing an actor's end would leak them.
func releaseMessage(msg any) {
	switch m := msg.(type) {
	case holder:
		m.release()
	case *engine.Frame:
		m.Release()
	}
}
