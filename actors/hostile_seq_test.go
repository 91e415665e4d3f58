package actors

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// TestHostileSeqProtocolError: on a CapSeq link, a frame header that
// breaks the protocol (an unknown type, a length past the limit) ends the
// link for good (§10, §15.4): the listener says GOAWAY, logs the protocol
// error, does not keep the link to be resumed, and resets the link's
// streams at once — the target of one sees a reset now, not when the
// resume window (an hour here) runs out.
func TestHostileSeqProtocolError(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdr  func(p *wirepeer.Peer) []byte
	}{
		{"unknown type", func(p *wirepeer.Peer) []byte { return wirepeer.Header(p.Version(), 0x77, 0, 0) }},
		{"length past the limit", func(p *wirepeer.Peer) []byte {
			return wirepeer.Header(p.Version(), engine.TypeData, 1, engine.DefaultMaxPayload+1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := testkit.NewRecorder()
			h := newHostile(t, nil, func(_ *hostile, c *Config) {
				c.Logger = slog.New(log)
				c.ResumeWindow = time.Hour
			})
			ended := make(chan error, 1)
			target := testkit.Serve(t, func(c net.Conn) {
				_, err := io.Copy(io.Discard, c)
				ended <- err
			})
			p := wirepeer.Connect(t, h.pair.LinkAddr, wirepeer.Options{Seq: true})
			id := p.NextID()
			check(t, p.Open(id, target, nil))
			expectOn(t, p, id, engine.TypeOpenOK, 0)
			check(t, p.Write(tc.hdr(p)))
			judge(t, p, closes, engine.CodeProtocol)
			select {
			case err := <-ended:
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("the stream's target saw %v; want a reset", err)
				}
			case <-time.After(hostileGuard): // a guard, not a measurement
				t.Fatal("the stream's target was not reset: the link is kept to be resumed")
			}
			log.Wait(t, hostileGuard, "the protocol error logged", func(r testkit.Record) bool {
				return r.Msg == "link protocol error" && r.Level == slog.LevelWarn
			})
			for _, r := range log.Records() {
				if r.Msg == "link lost its last carrier; waiting to resume it" {
					t.Fatalf("the link was kept to be resumed after a protocol error: %v", r.Attrs)
				}
			}
			h.goodTransfer(t, 9, 256<<10)
		})
	}
}
