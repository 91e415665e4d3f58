package actors

import (
	"io"
	"net"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestBox: a box delivers user messages in order, a burst of them past
// what its ring keeps too; a stop overtakes the user messages queued
// behind it; what the stopped actor never saw is released (the buffer goes
// back to the pool, the socket is closed).
func TestBox(t *testing.T) {
	testkit.CheckLeaks(t)
	n, err := NewNode(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	e := n.env
	const burst = 100
	var got []int64
	entered, release, stopped := make(chan struct{}), make(chan struct{}), make(chan struct{})
	pid := e.sys.Root.Spawn(e.props(func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *grant:
				got = append(got, m.n)
				if m.n == 0 || m.n == burst {
					entered <- struct{}{}
					<-release
				}
			case *actor.Stopped:
				close(stopped)
			}
		})
	}))
	// A burst queued behind a busy actor comes out in order.
	e.send(pid, &grant{n: 0})
	<-entered
	for i := 1; i <= burst; i++ {
		e.send(pid, &grant{n: int64(i)})
	}
	release <- struct{}{}
	<-entered // the burst's last
	for i, n := range got {
		if n != int64(i) {
			t.Fatalf("message %d was grant %d", i, n)
		}
	}
	// The actor is busy again: a grant, a buffer and a socket queue
	// up, then the stop, which goes first.
	e.send(pid, &grant{n: -1})
	buf := engine.GetBuffer(10)
	e.send(pid, &engine.Frame{Type: engine.TypeData, Stream: 1, Payload: buf})
	near, far := net.Pipe()
	defer far.Close()
	e.send(pid, &accepted{conn: near})
	e.sys.Root.Stop(pid)
	close(release)
	<-stopped
	if _, err := far.Read(make([]byte, 1)); err != io.EOF { // the box closed it
		t.Fatalf("the dropped socket reads %v, want EOF", err)
	}
	if len(got) != burst+1 {
		t.Fatalf("the stopped actor was handed %d grants, want %d", len(got), burst+1)
	}
	// CheckLeaks finds the buffer back in the pool.
}
