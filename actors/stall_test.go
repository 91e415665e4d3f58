package actors

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// TestCarrierNotReadDropped: a peer that keeps sending PINGs (so it never
// looks silent) but reads nothing, while the listener has bytes for it,
// loses its carrier once a write has made no progress for three keepalive
// intervals; the reason says the peer does not read.
func TestCarrierNotReadDropped(t *testing.T) {
	testkit.CheckLeaks(t)
	buf := make([]byte, 256<<10)
	hose := testkit.Serve(t, func(c net.Conn) {
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	rec := testkit.NewRecorder()
	downs := make(chan LinkEvent, 4)
	n, err := NewNode(Config{Logger: slog.New(rec), Keepalive: 100 * time.Millisecond,
		OnLink: func(ev LinkEvent) {
			if !ev.Up {
				downs <- ev
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.Serve(ln)
	p := wirepeer.Connect(t, ln.Addr().String(), wirepeer.Options{RecvBuffer: 128 << 10, Window: engine.MaxWindow})
	if err := p.Open(p.NextID(), hose, nil); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if p.SendPing(i) != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-pinged }()
	select {
	case ev := <-downs:
		if !errors.Is(ev.Err, errPeerNotReading) {
			t.Fatalf("link down: %v, want %v", ev.Err, errPeerNotReading)
		}
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("the link to a peer that reads nothing stayed up")
	}
}
