package wirepeer_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
	"github.com/sockmux/sockmux/internal/wirepeer"
)

// TestHostilePeerEncodes: the peer's frames are byte for byte the engine's
// (the worked example of PROTOCOL.md §14), and the decoder reads back what
// either wrote.
func TestHostilePeerEncodes(t *testing.T) {
	const example = "01020000000000010000002300000e6578616d706c652e636f6d3a3830474554202f20485454502f312e300d0a0d0a"
	want, _ := hex.DecodeString(example)
	got := wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: engine.TypeOpen, Stream: 1}, 0,
		wirepeer.OpenPayload(engine.TargetDial, "example.com:80", []byte("GET / HTTP/1.0\r\n\r\n")))
	if !bytes.Equal(got, want) {
		t.Fatalf("OPEN encodes as\n%x, want\n%x", got, want)
	}
	ef := engine.NewOpen(7, engine.TargetDial, "h:1", []byte("x"))
	ef.Seq = 42
	wire := engine.AppendFrame(nil, ef, 1)
	ef.Release()
	f, err := wirepeer.ReadFrame(bytes.NewReader(wire), true, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != engine.TypeOpen || f.Stream != 7 || f.Seq != 42 || f.Flags&engine.FlagSeq == 0 {
		t.Fatalf("decoded %v seq %d flags %#x, want OPEN stream 7 seq 42 with FlagSeq", f, f.Seq, f.Flags)
	}
	if o, err := engine.ParseOpen(f.Payload); err != nil || o.Target != "h:1" || string(o.Data) != "x" {
		t.Fatalf("payload %+v, %v", o, err)
	}
	if again := wirepeer.AppendFrame(nil, f.Header, f.Seq, f.Payload); !bytes.Equal(again, wire) {
		t.Fatalf("re-encoded as %x, want %x", again, wire)
	}
	// A length beyond the limit is refused before anything is read.
	if _, err := wirepeer.ReadFrame(bytes.NewReader(wirepeer.Header(1, engine.TypeData, 1, 1<<30)), false, 1<<16); !errors.Is(err, wirepeer.ErrTooLarge) {
		t.Fatalf("oversized frame: %v, want ErrTooLarge", err)
	}
	if _, err := wirepeer.ReadFrame(bytes.NewReader(wire[:len(wire)-1]), true, 1<<16); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut frame: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := wirepeer.ReadFrame(bytes.NewReader(nil), true, 1<<16); err != io.EOF {
		t.Fatalf("empty input: %v, want io.EOF", err)
	}
}

// FuzzHostileReadFrame: the decoder never panics, never allocates past its
// limit, and what it decodes encodes back to the bytes it consumed.
func FuzzHostileReadFrame(f *testing.F) {
	f.Add([]byte{0}, []byte{})
	f.Add([]byte{1}, wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: engine.TypeData, Stream: 3}, 9, []byte("abc")))
	f.Add([]byte{0}, wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: engine.TypePing}, 0, wirepeer.PingPayload(1)))
	f.Add([]byte{0}, wirepeer.Header(1, engine.TypeData, 1, 0xFFFFFFFF))
	f.Add([]byte{1}, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte{1}, append(wirepeer.AppendFrame(nil, engine.Header{Version: 1, Type: engine.TypeCredit, Flags: engine.FlagAfter, Stream: 3}, 9, nil), 0, 0, 0, 7)) // with its After
	f.Fuzz(func(t *testing.T, mode, data []byte) {
		seq := len(mode) > 0 && mode[0]&1 == 1
		const limit = 1 << 12
		r := bytes.NewReader(data)
		for {
			start := len(data) - r.Len()
			fr, err := wirepeer.ReadFrame(r, seq, limit)
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, wirepeer.ErrTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(fr.Payload) > limit || uint32(len(fr.Payload)) != fr.Length {
				t.Fatalf("payload of %d bytes for length %d (limit %d)", len(fr.Payload), fr.Length, limit)
			}
			used := data[start : len(data)-r.Len()]
			var hdr [engine.HeaderLen]byte
			engine.PutHeader(hdr[:], fr.Header)
			off := engine.HeaderLen
			if seq && fr.Flags&engine.FlagSeq != 0 {
				off += engine.SeqLen
				if len(used) < off || binary.BigEndian.Uint64(used[engine.HeaderLen:]) != fr.Seq {
					t.Fatalf("sequence number %d does not match the bytes %x", fr.Seq, used)
				}
				if fr.Flags&engine.FlagAfter != 0 {
					off += engine.AfterLen
					if len(used) < off || binary.BigEndian.Uint32(used[off-engine.AfterLen:]) != fr.After {
						t.Fatalf("After %d does not match the bytes %x", fr.After, used)
					}
				} else if fr.After != 0 {
					t.Fatalf("After %d without FlagAfter", fr.After)
				}
			} else if fr.Seq != 0 || fr.After != 0 {
				t.Fatalf("sequence number %d, After %d without CapSeq and FlagSeq", fr.Seq, fr.After)
			}
			if !bytes.Equal(hdr[:], used[:engine.HeaderLen]) || len(used) != off+len(fr.Payload) ||
				!bytes.Equal(used[off:], fr.Payload) {
				t.Fatalf("frame %v (seq %d) does not re-encode to the %d bytes it consumed: %x", fr, fr.Seq, len(used), used)
			}
		}
	})
}

// TestHostilePeerHandshake: the peer comes up with a real node, with and
// without a key and with CapSeq, and a wrong key is refused with code 12.
func TestHostilePeerHandshake(t *testing.T) {
	key := []byte("k, but sixteen bytes long")
	cases := []struct {
		name     string
		nodeKey  []byte
		peer     wirepeer.Options
		refused  engine.Code // 0: the link comes up
		wantSeq  bool
		wantAuth bool
	}{
		{name: "plain"},
		{name: "key", nodeKey: key, peer: wirepeer.Options{Key: key}},
		{name: "CapSeq", peer: wirepeer.Options{Seq: true}, wantSeq: true},
		{name: "wrong key", nodeKey: key, peer: wirepeer.Options{Key: []byte("other")}, refused: engine.CodeAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			n, err := actors.NewNode(actors.Config{Key: tc.nodeKey, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			ln, err := carriers.Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			n.Serve(ln)
			p := wirepeer.Dial(t, ln.Addr().String(), tc.peer)
			err = p.Handshake()
			if tc.refused != 0 {
				if err == nil {
					t.Fatal("handshake succeeded, want it refused")
				}
				// Both sides send AUTH at once: this side may find the
				// mismatch first; the node's verdict follows.
				c, cerr := p.Closed(5 * time.Second)
				if cerr != nil || c.GoAway == nil || c.GoAway.Code != tc.refused {
					t.Fatalf("handshake: %v; then %v, GOAWAY %v: want GOAWAY code %v", err, cerr, c.GoAway, tc.refused)
				}
				n.Close()
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Seq() != tc.wantSeq {
				t.Errorf("CapSeq agreed %v, want %v", p.Seq(), tc.wantSeq)
			}
			if _, err := p.RoundTrip(5 * time.Second); err != nil {
				t.Fatalf("no PONG: %v", err)
			}
			// A stream through the node to an echo server, numbered on a
			// CapSeq link.
			echo := testkit.Echo(t)
			id := p.NextID()
			if err := p.Open(id, echo, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			data, _, err := p.ReadStream(id, 5, 5*time.Second)
			if err != nil || string(data) != "hello" {
				t.Fatalf("echo %q, %v; want hello", data, err)
			}
			n.Close() // before the peer: see actors' hostile.closeListener
		})
	}
}
