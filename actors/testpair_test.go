package actors

// testPair: two nodes linked over loopback for the end-to-end tests (once
// internal/testpair, which as a package of its own kept these tests outside
// the package).

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// testPair is two nodes linked over a loopback TCP carrier: A listens, B dials.
type testPair struct {
	A, B       *Node
	LinkAddr   string
	ALog, BLog *testkit.Recorder
	Proxy      *testkit.Proxy
	// Relay is the UDP relay a "quic" testPair's Proxy puts between B and A.
	Relay *testkit.UDPRelay
	// Ups receives a value each time B's link comes up.
	Ups chan struct{}
	// Dials counts B's carrier dials, successful or not.
	Dials atomic.Int64
}

// pairConfig says what each side of a testPair has.
type pairConfig struct {
	AForwards, BForwards []forward.Forward
	Window, MaxWindow    uint32
	// Proxy puts a cuttable proxy between B and A (testPair.Proxy; for a
	// "quic" testPair, the UDP relay testPair.Relay).
	Proxy bool
	// Backoff is B's first redial delay (the default when 0).
	Backoff time.Duration
	// Keepalive is both sides' keepalive interval (the default when 0).
	Keepalive time.Duration
	// A and B, when set, adjust each side's configuration last.
	A, B func(*Config)
	// Carrier is "tcp" (the default), "ws" (a WebSocket carrier), "quic"
	// (a QUIC carrier, the listener's generated certificate pinned) or
	// "pipe" (in memory, unbuffered).
	Carrier string
	// Carriers is how many carriers B's link keeps (1 when 0).
	Carriers int
	// Key is both sides' pre-shared key (none when nil): the link is
	// encrypted.
	Key []byte
	// ResumeWindow is both sides' resume window (the default when 0;
	// negative: a link whose carrier drops goes down).
	ResumeWindow time.Duration
}

// pairCarriers are the carrier kinds a testPair can run on; end-to-end
// tests run their body once per kind.
var pairCarriers = []string{"tcp", "pipe", "ws", "quic"}

// wsPath is the path of a "ws" testPair's carrier.
const wsPath = "/pair"

// New starts a linked pair and returns once the link is up on both sides.
// Both nodes are closed, and leaks checked, when the test ends.
func newTestPair(t testing.TB, pc pairConfig) *testPair {
	t.Helper()
	testkit.CheckLeaks(t)
	p := &testPair{ALog: testkit.NewRecorder(), BLog: testkit.NewRecorder()}
	upA, upB := make(chan struct{}, 16), make(chan struct{}, 16)
	p.Ups = upB
	onLink := func(ch chan struct{}) func(LinkEvent) {
		return func(ev LinkEvent) {
			if ev.Up {
				ch <- struct{}{}
			}
		}
	}
	var err error
	ca := Config{Logger: slog.New(p.ALog), Forwards: pc.AForwards, Window: pc.Window, MaxWindow: pc.MaxWindow, Keepalive: pc.Keepalive, OnLink: onLink(upA),
		ResumeWindow: pc.ResumeWindow, Key: pc.Key}
	if pc.A != nil {
		pc.A(&ca)
	}
	p.A, err = NewNode(ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.A.Close() })
	t.Cleanup(func() {
		if t.Failed() {
			p.dumpLogs(t)
		}
	})
	ln, dial := listenCarrier(t, pc.Carrier, slog.New(p.ALog), slog.New(p.BLog))
	p.A.Serve(ln)
	cb := Config{Logger: slog.New(p.BLog), Forwards: pc.BForwards, Window: pc.Window, MaxWindow: pc.MaxWindow, Keepalive: pc.Keepalive, OnLink: onLink(upB),
		Backoff: pc.Backoff, MaxBackoff: 4 * max(pc.Backoff, time.Second), ResumeWindow: pc.ResumeWindow, Carriers: pc.Carriers, Key: pc.Key}
	if pc.B != nil {
		pc.B(&cb)
	}
	p.B, err = NewNode(cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.B.Close() })
	dialAddr := ""
	if pc.Carrier != "pipe" {
		p.LinkAddr = ln.Addr().String()
		dialAddr = p.LinkAddr
		switch {
		case pc.Proxy && pc.Carrier == "quic":
			p.Relay = testkit.NewUDPRelay(t, p.LinkAddr)
			dialAddr = p.Relay.Addr()
			// The nodes close before the relay does, so that their
			// carriers can say goodbye through it.
			t.Cleanup(func() { p.B.Close(); p.A.Close() })
		case pc.Proxy:
			p.Proxy = testkit.NewProxy(t, p.LinkAddr)
			dialAddr = p.Proxy.Addr()
		}
	}
	dialer := dial(dialAddr)
	p.B.Connect(&countingDialer{Dialer: dialer, n: &p.Dials})
	for _, ch := range []chan struct{}{upA, upB} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("link did not come up")
		}
	}
	return p
}

// pipes numbers the "pipe" listeners, so that their dialers have names
// of their own.
var pipes atomic.Int64

// listenCarrier starts a carrier listener of kind (one of pairCarriers; ""
// is "tcp") on loopback, logging to log, and returns it, to be served, with
// the dialers of that kind: dial(addr) reaches it at addr (its own address,
// or a proxy's in front of it), logging to dialLog. A "pipe" listener's
// dialer ignores addr, and is named "pipe:N". The node that serves the
// listener closes it.
func listenCarrier(t testing.TB, kind string, log, dialLog *slog.Logger) (ln net.Listener, dial func(addr string) carriers.Dialer) {
	t.Helper()
	var err error
	var dialOpts []carriers.Option
	scheme, path := "tcp://", ""
	switch kind {
	case "", "tcp":
		ln, err = carriers.Listen("127.0.0.1:0")
	case "ws":
		ln, err = carriers.Listen("ws://127.0.0.1:0"+wsPath, carriers.WithLogger(log))
		scheme, path = "ws://", wsPath
	case "quic":
		tc := carriers.TLSConfig{StateDir: t.TempDir()}
		fp, ferr := tc.ServerFingerprint()
		if ferr != nil {
			t.Fatal(ferr)
		}
		ln, err = carriers.Listen("quic://127.0.0.1:0", carriers.WithTLS(tc), carriers.WithLogger(log))
		scheme = "quic://"
		dialOpts = []carriers.Option{carriers.WithTLS(carriers.TLSConfig{Fingerprint: fp}), carriers.WithLogger(dialLog)}
	case "pipe":
		pipe := testkit.NewPipeCarrier()
		d := &namedDialer{Dialer: pipe, name: fmt.Sprintf("pipe:%d", pipes.Add(1))}
		return pipe, func(string) carriers.Dialer { return d }
	default:
		t.Fatalf("unknown carrier %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ln, func(addr string) carriers.Dialer {
		d, err := carriers.NewDialer(scheme+addr+path, dialOpts...)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// namedDialer is a Dialer under another name.
type namedDialer struct {
	carriers.Dialer
	name string
}

func (d *namedDialer) String() string { return d.name }

// countingDialer counts the dials of the Dialer it wraps.
type countingDialer struct {
	carriers.Dialer
	n *atomic.Int64
}

func (d *countingDialer) Dial(ctx context.Context) (net.Conn, error) {
	d.n.Add(1)
	return d.Dialer.Dial(ctx)
}

// dumpLogs prints the last info-and-above records of both sides.
func (p *testPair) dumpLogs(t testing.TB) {
	for _, side := range []struct {
		name string
		r    *testkit.Recorder
	}{{"A", p.ALog}, {"B", p.BLog}} {
		recs := side.r.Records()
		for _, rec := range recs[max(0, len(recs)-40):] {
			if rec.Level >= slog.LevelInfo {
				t.Logf("%s %v %s %v", side.name, rec.Level, rec.Msg, rec.Attrs)
			}
		}
	}
}

// pairEdge is one more node dialling a testPair's A over a plain TCP carrier (a
// hub with several edges), through a cuttable Proxy.
type pairEdge struct {
	Node  *Node
	Log   *testkit.Recorder
	Proxy *testkit.Proxy
}

// AddEdge starts a node that dials p.A (whose carrier must be "tcp"),
// adjusted by adjust, and returns once its link is up. It is closed when
// the test ends.
func (p *testPair) AddEdge(t testing.TB, adjust func(*Config)) *pairEdge {
	t.Helper()
	e := &pairEdge{Log: testkit.NewRecorder(), Proxy: testkit.NewProxy(t, p.LinkAddr)}
	up := make(chan struct{}, 16)
	cfg := Config{Logger: slog.New(e.Log), OnLink: func(ev LinkEvent) {
		if ev.Up {
			up <- struct{}{}
		}
	}}
	if adjust != nil {
		adjust(&cfg)
	}
	var err error
	if e.Node, err = NewNode(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Node.Close() })
	dialer, err := carriers.NewDialer("tcp://" + e.Proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	e.Node.Connect(dialer)
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		t.Fatal("edge link did not come up")
	}
	return e
}
