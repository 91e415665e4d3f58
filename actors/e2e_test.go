package actors

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

func fwd(t testing.TB, target string) forward.Forward {
	t.Helper()
	f, err := forward.ParseForward("127.0.0.1:0:" + target)
	if err != nil {
		t.Fatal(err)
	}
	// ParseForward normalises the target; keep the exact one.
	f.Target = target
	return f
}

// eachCarrier runs one test body over every carrier kind.
func eachCarrier(t *testing.T, body func(t *testing.T, carrier string)) {
	for _, c := range pairCarriers {
		t.Run(c, func(t *testing.T) { body(t, c) })
	}
}

// TestTransferBothWays pushes 64 MiB each way through a forward declared on
// the listening side and one declared on the dialling side of one link.
func TestTransferBothWays(t *testing.T) { eachCarrier(t, testTransferBothWays) }

func testTransferBothWays(t *testing.T, carrier string) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{
		AForwards: []forward.Forward{fwd(t, echo)},
		BForwards: []forward.Forward{fwd(t, echo)},
		Carrier:   carrier,
	})
	size := 64 << 20
	if testing.Short() {
		size = 8 << 20
	}
	for _, side := range []struct {
		name string
		addr net.Addr
	}{{"listener-side -L", p.A.ForwardAddrs()[0]}, {"dialer-side -L", p.B.ForwardAddrs()[0]}} {
		t.Run(side.name, func(t *testing.T) {
			testkit.EchoRoundTrip(t, testkit.Dial(t, side.addr), 1, size)
		})
	}
	if in, out := p.A.Stats().BytesIn.Load(), p.A.Stats().BytesOut.Load(); in < int64(2*size) || out < int64(2*size) {
		t.Errorf("listener counted %d bytes in, %d out; want at least %d each", in, out, 2*size)
	}
}

// TestHalfClose: the client sends a request and shuts its write side; the
// server reads to EOF, then answers; the client gets the whole answer.
func TestHalfClose(t *testing.T) { eachCarrier(t, testHalfClose) }

func testHalfClose(t *testing.T, carrier string) {
	const answer = 3 << 20
	srv := testkit.Serve(t, func(c net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return
		}
		c.Write(h.Sum(nil))
		testkit.Stream(c, 7, answer)
	})
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, srv)}, Carrier: carrier})
	c := testkit.Dial(t, p.B.ForwardAddrs()[0])
	req := testkit.Payload(3, 100_000)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	want := sha256.Sum256(req)
	if len(got) != 32+answer || string(got[:32]) != string(want[:]) {
		t.Fatalf("answer of %d bytes (want %d) or request hash differs", len(got), 32+answer)
	}
	wantBody, _ := testkit.Stream(io.Discard, 7, answer)
	if sha256.Sum256(got[32:]) != wantBody {
		t.Fatal("answer body differs")
	}
}

// TestManyStreams runs 200 streams at once on one link, each with its own
// payload.
func TestManyStreams(t *testing.T) { eachCarrier(t, testManyStreams) }

func testManyStreams(t *testing.T, carrier string) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{AForwards: []forward.Forward{fwd(t, echo)}, Carrier: carrier})
	addr := p.A.ForwardAddrs()[0]
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			testkit.EchoRoundTrip(t, c, uint64(i), 1000+i*1500)
		}()
	}
	wg.Wait()
	if got := p.A.Stats().StreamsOpened.Load(); got != 200 {
		t.Errorf("listener opened %d streams, want 200", got)
	}
}

// TestHeadOfLine: a stream whose far reader stops must not slow the others,
// and holds no more than its window (which may have grown, up to its
// maximum, while the kernel's socket buffers still took its bytes).
func TestHeadOfLine(t *testing.T) {
	const window, maxWindow = 128 << 10, 1 << 20
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	var stalledSum [32]byte
	var stalledN int64
	stalledDone := make(chan struct{})
	stalled := testkit.Serve(t, func(c net.Conn) {
		defer close(stalledDone)
		<-release
		h := sha256.New()
		stalledN, _ = io.Copy(h, c)
		copy(stalledSum[:], h.Sum(nil))
	})
	t.Cleanup(free) // runs before the servers' cleanups, even on failure
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{
		AForwards: []forward.Forward{fwd(t, stalled), fwd(t, echo)},
		Window:    window, MaxWindow: maxWindow,
	})
	// The stalled stream: the client writes until it is blocked.
	const stalledSize = 32 << 20
	sc := testkit.Dial(t, p.A.ForwardAddrs()[0])
	wrote := make(chan [32]byte, 1)
	go func() {
		sum, _ := testkit.Stream(sc, 11, stalledSize)
		sc.CloseWrite()
		wrote <- sum
	}()
	// Meanwhile other streams carry 8 MiB each, to completion.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", p.A.ForwardAddrs()[1].String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			testkit.EchoRoundTrip(t, c, uint64(20+i), 8<<20)
		}()
	}
	wg.Wait()
	select {
	case <-stalledDone:
		t.Fatal("the stalled server finished before it was released")
	default:
	}
	// The stalled stream fills its window and no more: the node that
	// writes to the stalled server never queued more than the window for
	// one stream (B dials the targets of A's forwards).
	waitFor(t, "the stalled stream to fill its window", func() bool {
		return p.B.Stats().maxQueuedBytes.Load() >= window/2
	})
	if got := p.B.Stats().maxQueuedBytes.Load(); got > maxWindow {
		t.Fatalf("a stream queued %d bytes, more than its largest window of %d", got, maxWindow)
	}
	free()
	want := <-wrote
	<-stalledDone
	if stalledN != stalledSize || stalledSum != want {
		t.Fatalf("stalled stream delivered %d bytes (want %d), hash match %v", stalledN, stalledSize, stalledSum == want)
	}
}

// TestTargetRefused: a target that refuses closes the client promptly, and
// both sides log the target and the reason (the dialling side, the peer
// that asked too).
func TestTargetRefused(t *testing.T) {
	dead := testkit.FreeAddr(t)
	p := newTestPair(t, pairConfig{AForwards: []forward.Forward{fwd(t, dead)}})
	if err := testkit.DialClosed(t, p.A.ForwardAddrs()[0].String()); !testkit.IsReset(err) {
		t.Fatalf("client got %v; want its connection reset", err)
	}
	rec := p.BLog.Wait(t, 5*time.Second, "dial failure on the dialling side", func(r testkit.Record) bool {
		return r.Msg == "target dial failed"
	})
	if rec.Attrs["target"] != dead {
		t.Errorf("dial failure names target %v, want %s", rec.Attrs["target"], dead)
	}
	if peer, _ := rec.Attrs["peer"].(string); peer == "" { // on a hub of many links, who asked
		t.Errorf("dial failure names no peer: %v", rec.Attrs)
	}
	if err, _ := rec.Attrs["err"].(error); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial failure reason %v, want connection refused", rec.Attrs["err"])
	}
	p.ALog.Wait(t, 5*time.Second, "OPEN_FAIL on the opening side", func(r testkit.Record) bool {
		return r.Msg == "peer could not open stream" && r.Attrs["target"] == dead
	})
}

// TestBadPeers sends garbage and broken frames to the link port: each
// closes only its own link, with a logged reason, and the established link
// keeps working.
func TestBadPeers(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{BForwards: []forward.Forward{fwd(t, echo)}})
	hello := func(minV, maxV uint8) []byte {
		f := engine.NewHello(&engine.Hello{MinVersion: minV, MaxVersion: maxV, Role: engine.RoleDialer,
			MaxPayload: engine.DefaultMaxPayload, InitialWindow: engine.DefaultWindow})
		defer f.Release()
		return engine.AppendFrame(nil, f, maxV)
	}
	// seqHello is a dialler's HELLO that offers CapSeq, with or without
	// its link extensions. Each has a link id of its own: a case's link
	// may still hold its id while the next case connects, and a HELLO
	// with the same id would be refused for that instead (logged under
	// the rate limit's key of another case's handshake failure).
	var links byte
	seqHello := func(ext bool) []byte {
		h := &engine.Hello{MinVersion: 1, MaxVersion: 1, Role: engine.RoleDialer,
			MaxPayload: engine.DefaultMaxPayload, InitialWindow: engine.DefaultWindow, Capabilities: engine.CapSeq}
		if ext {
			links++
			engine.SetLinkHello(h, engine.LinkHello{ID: engine.LinkID{1, 2, 3, links}, Reorder: engine.DefaultReorder})
		}
		f := engine.NewHello(h)
		defer f.Release()
		return engine.AppendFrame(nil, f, 1)
	}
	header := func(typ engine.Type, stream, length uint32) []byte {
		b := make([]byte, engine.HeaderLen)
		engine.PutHeader(b, engine.Header{Version: 1, Type: typ, Stream: stream, Length: length})
		return b
	}
	frame := func(f *engine.Frame) []byte {
		defer f.Release()
		return engine.AppendFrame(nil, f, 1)
	}
	numberedAck := engine.NewAck(engine.Ack{})
	numberedAck.Seq = 1
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	cases := []struct {
		name     string
		send     []byte
		wantErr  error
		wantCode engine.Code
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), engine.ErrBadMagic, engine.CodeProtocol},
		{"wrong version", hello(9, 9), engine.ErrVersion, engine.CodeVersion},
		{"truncated frame", cat(hello(1, 1), header(engine.TypeData, 1, 100), []byte("short")), engine.ErrTruncated, 0},
		{"oversized length", cat(hello(1, 1), header(engine.TypeData, 1, 1<<30)), engine.ErrFrameTooLarge, engine.CodeProtocol},
		{"unknown type", cat(hello(1, 1), header(0x7f, 1, 0)), engine.ErrUnknownType, engine.CodeProtocol},
		{"bad stream id", cat(hello(1, 1), header(engine.TypeOpen, 2, 0)), engine.ErrBadStreamID, engine.CodeProtocol},
		{"CapSeq without a link id", seqHello(false), engine.ErrMalformed, engine.CodeProtocol},
		{"unnumbered frame on a sequenced link", cat(seqHello(true), header(engine.TypeOpenOK, 1, 0)), engine.ErrMalformed, engine.CodeProtocol},
		{"numbered ACK", cat(seqHello(true), frame(numberedAck)), engine.ErrMalformed, engine.CodeProtocol},
		{"ACK of a frame never sent", cat(seqHello(true), frame(engine.NewAck(engine.Ack{Received: 1 << 40}))), engine.ErrMalformed, engine.CodeProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.LinkAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tc.send)
			if tc.name == "truncated frame" {
				c.(*net.TCPConn).CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
			code, gotGoAway := readGoAway(t, c)
			if tc.wantCode != 0 && (!gotGoAway || code != tc.wantCode) {
				t.Errorf("got GOAWAY %v (code %v), want code %v", gotGoAway, code, tc.wantCode)
			}
			p.ALog.Wait(t, 5*time.Second, "a log line naming "+tc.wantErr.Error(), func(r testkit.Record) bool {
				err, _ := r.Attrs["err"].(error)
				if err == nil {
					err, _ = r.Attrs["reason"].(error)
				}
				return errors.Is(err, tc.wantErr) && r.Attrs["peer"] == c.LocalAddr().String()
			})
		})
	}
	testkit.EchoRoundTrip(t, testkit.Dial(t, p.B.ForwardAddrs()[0]), 5, 1<<20)
	if p.A.Stats().linksUp.Load() != 1 {
		t.Errorf("listener has %d links up, want 1", p.A.Stats().linksUp.Load())
	}
}

// readGoAway reads the link's frames until it closes and returns the code
// of the GOAWAY among them, if any.
func readGoAway(t testing.TB, c net.Conn) (engine.Code, bool) {
	data, err := io.ReadAll(c)
	if err != nil && !testkit.IsClosed(err) {
		t.Fatalf("reading from the link: %v", err)
	}
	for len(data) >= engine.HeaderLen {
		typ, n := engine.Type(data[1]), int(binary.BigEndian.Uint32(data[8:]))
		if len(data) < engine.HeaderLen+n {
			break
		}
		if typ == engine.TypeGoAway {
			r, err := engine.ParseReason(data[engine.HeaderLen : engine.HeaderLen+n])
			if err != nil {
				t.Fatalf("bad GOAWAY: %v", err)
			}
			return r.Code, true
		}
		data = data[engine.HeaderLen+n:]
	}
	return 0, false
}

// TestStreamsReleaseBuffers: after streams end, with the link still up,
// every pooled buffer is back and the streams are gone from both sides.
func TestStreamsReleaseBuffers(t *testing.T) {
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{AForwards: []forward.Forward{fwd(t, echo)}})
	before := engine.PoolOutstanding()
	for i := range 20 {
		testkit.EchoRoundTrip(t, testkit.Dial(t, p.A.ForwardAddrs()[0]), uint64(i), 300_000)
	}
	waitFor(t, "all streams to close on both sides", func() bool {
		return p.A.Stats().StreamsClosed.Load() == 20 && p.B.Stats().StreamsClosed.Load() == 20
	})
	// The link's own frames (a PING in flight when before was read) may
	// come back too, so the count may end below before, never above; the
	// exact count is checked when the pair closes (testkit.CheckLeaks).
	waitFor(t, "buffers to come back", func() bool { return engine.PoolOutstanding() <= before })
}

// waitFor polls cond until it holds; it fails the test after a generous
// limit. It waits for a state, not for time to pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestLinkDropMidTransfer cuts the carrier while streams are in flight: the
// clients' connections close, the dialling side redials, new traffic flows,
// and nothing leaks.
func TestLinkDropMidTransfer(t *testing.T) {
	// The held streams stay open: their clients never finish sending.
	held := testkit.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	echo := testkit.Echo(t)
	p := newTestPair(t, pairConfig{
		BForwards: []forward.Forward{fwd(t, held), fwd(t, echo)},
		Proxy:     true, Backoff: 10 * time.Millisecond,
		ResumeWindow: -1, // the streams go down with the carrier
	})
	var clients []*net.TCPConn
	for range 4 {
		c := testkit.Dial(t, p.B.ForwardAddrs()[0])
		if _, err := c.Write(testkit.Payload(1, 200_000)); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	waitFor(t, "the streams to open on the far side", func() bool { return p.A.Stats().StreamsOpened.Load() == 4 })
	p.Proxy.Cut()
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
		if _, err := io.Copy(io.Discard, c); err != nil && !testkit.IsClosed(err) {
			t.Fatalf("client %d: %v, want its connection closed", i, err)
		}
	}
	p.BLog.Wait(t, 10*time.Second, "link down on the dialling side", func(r testkit.Record) bool { return r.Msg == "link down" })
	select {
	case <-p.Ups:
	case <-time.After(20 * time.Second):
		t.Fatal("the link was not redialled")
	}
	testkit.EchoRoundTrip(t, testkit.Dial(t, p.B.ForwardAddrs()[1]), 2, 2<<20)
}
