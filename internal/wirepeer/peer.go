// Package wirepeer owns a test client that speaks the sockmux wire protocol
// by hand, for tests that play a peer no real node would be: it dials a
// node's link listener (or accepts a node's dial), runs the HELLO exchange
// (with or without a pre-shared key, announcing whatever parameters the
// test asks for, absurd ones included), then writes any frame, well formed
// or not, or raw bytes, and reads the node's frames back with a deadline.
//
// A Peer reads only when asked to, so a peer that is never asked is a peer
// that never reads: its socket fills and the node's writes back up
// (Options.RecvBuffer makes that happen sooner). It takes nothing from the
// engine's buffer pool, so the leak checks of the node under test count
// only the node's own buffers. It does not import the actors.
//
// A Peer is used by at most one writing and one reading goroutine at a time.
package wirepeer

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/testkit"
)

// Options say how a Peer introduces itself.
type Options struct {
	// Key is the pre-shared key the peer proves in the Noise handshake
	// (AUTH frames); the connection is sealed after it (none when nil).
	Key []byte
	// Seq offers CapSeq, with a fresh link id and a 16 MiB reorder limit;
	// once agreed, Send numbers the frames that are sequenced.
	Seq bool
	// Window is the initial window the HELLO announces
	// (engine.DefaultWindow when 0).
	Window uint32
	// MaxPayload is the max payload the HELLO announces
	// (engine.DefaultMaxPayload when 0).
	MaxPayload uint32
	// Hello, when set, adjusts the HELLO last, after the nonce and clock
	// are in: absurd versions, roles, limits, a replayed nonce.
	Hello func(*engine.Hello)
	// Extra is appended, raw, to the HELLO payload: TLV entries a map
	// cannot hold (a repeated tag) or a list that does not end where the
	// payload does.
	Extra []byte
	// HelloOnly stops the handshake after the HELLOs, before AUTH, so the
	// test decides what comes next.
	HelloOnly bool
	// RecvBuffer, when set, is the socket receive buffer asked for before
	// connecting: a peer that never reads then backs the node up sooner.
	// Keep it above a loopback segment (64 KiB): below, a peer that reads
	// in the end gets a window update only per 200 ms persist probe.
	RecvBuffer int
	// Timeout bounds the handshake (5 s when 0).
	Timeout time.Duration
	// Source, when set, is the loopback address the peer dials from
	// (127.0.0.2, say): another host, as the node sees it.
	Source string
}

// Peer is one carrier connection to a node, played by hand.
type Peer struct {
	conn *net.TCPConn
	w    io.Writer // conn, or conn sealed once a keyed handshake is over
	br   *bufio.Reader
	opts Options
	role engine.Role

	// Local and Remote are the HELLOs, as sent and as received; Params
	// what they agreed (from this side's view). They are set by Handshake.
	Local, Remote       *engine.Hello
	LocalRaw, RemoteRaw []byte
	Params              engine.Params

	version uint8  // header version: the HELLO's until agreed
	seq     bool   // CapSeq agreed
	nextSeq uint64 // writer: the last sequence number sent
	nextID  uint32 // writer: the next stream id of this peer's parity

	// goAway is the last GOAWAY the reader saw.
	goAway *engine.Reason
}

// Dial connects to a node's link listener at addr, as the dialer, and
// runs no handshake yet. The connection is closed when the test ends.
func Dial(t testing.TB, addr string, o Options) *Peer {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if o.Source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.Source)}
	}
	if o.RecvBuffer > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error { return testkit.SetRecvBuffer(c, o.RecvBuffer) }
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("wirepeer: dialling %s: %v", addr, err)
	}
	return newPeer(t, c.(*net.TCPConn), o, engine.RoleDialer)
}

// Connect dials addr and runs the handshake; a failed one fails the test.
// It must run on the test's goroutine.
func Connect(t testing.TB, addr string, o Options) *Peer {
	t.Helper()
	p := Dial(t, addr, o)
	if err := p.Handshake(); err != nil {
		t.Fatalf("wirepeer: handshake with %s: %v", addr, err)
	}
	return p
}

func newPeer(t testing.TB, c *net.TCPConn, o Options, role engine.Role) *Peer {
	t.Cleanup(func() { c.Close() })
	p := &Peer{conn: c, w: c, br: bufio.NewReaderSize(c, 64<<10), opts: o, role: role, version: engine.Version,
		nextID: role.FirstStreamID()}
	return p
}

// Listener accepts connections from a node that dials this test peer.
type Listener struct {
	t  testing.TB
	ln net.Listener
}

// Listen listens on a loopback port for a node to dial; it is closed when
// the test ends.
func Listen(t testing.TB) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &Listener{t: t, ln: ln}
}

// Addr is where the listener listens.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Accept waits up to timeout for a node's connection and returns it as an
// accepter, with no handshake run yet.
func (l *Listener) Accept(timeout time.Duration, o Options) (*Peer, error) {
	if tl, ok := l.ln.(*net.TCPListener); ok {
		_ = tl.SetDeadline(time.Now().Add(timeout))
	}
	c, err := l.ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("wirepeer: accepting: %w", err)
	}
	return newPeer(l.t, c.(*net.TCPConn), o, engine.RoleAccepter), nil
}

// Conn is the peer's connection, for what the methods do not cover.
func (p *Peer) Conn() *net.TCPConn { return p.conn }

// RefusedError is a handshake the node ended with a GOAWAY.
type RefusedError struct{ Reason engine.Reason }

// Error names the node's reason.
func (e *RefusedError) Error() string {
	return "wirepeer: node refused the handshake: " + e.Reason.String()
}

// Handshake sends this peer's HELLO, reads the node's, checks them with
// engine.Negotiate and, when both sides have a key (and HelloOnly is not
// set), runs the Noise handshake in AUTH frames and seals the connection;
// when only one has a key, it reads the node's refusal. A node that answers with a GOAWAY gives
// a *RefusedError (and GoAway reports it); a HELLO that this side's own
// negotiation refuses gives that error, and the node's verdict is left to
// be read (Closed).
func (p *Peer) Handshake() error {
	o := p.opts
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	_ = p.conn.SetDeadline(time.Now().Add(timeout))
	defer p.conn.SetDeadline(time.Time{})

	h := &engine.Hello{MinVersion: engine.MinVersion, MaxVersion: engine.Version, Role: p.role,
		MaxPayload: o.MaxPayload, InitialWindow: o.Window}
	if h.MaxPayload == 0 {
		h.MaxPayload = engine.DefaultMaxPayload
	}
	if h.InitialWindow == 0 {
		h.InitialWindow = engine.DefaultWindow
	}
	if o.Key != nil {
		h.Capabilities |= engine.CapPSK
	}
	if o.Seq {
		var id engine.LinkID
		_, _ = rand.Read(id[:])
		engine.SetLinkHello(h, engine.LinkHello{ID: id, Reorder: engine.DefaultReorder})
	}
	engine.AddFreshness(h, time.Now())
	if o.Hello != nil {
		o.Hello(h)
	}
	p.Local = h
	p.LocalRaw = append(engine.AppendHello(nil, h), o.Extra...)
	p.version = h.MaxVersion
	if err := p.Write(AppendFrame(nil, engine.Header{Version: h.MaxVersion, Type: engine.TypeHello}, 0, p.LocalRaw)); err != nil {
		return fmt.Errorf("wirepeer: sending HELLO: %w", err)
	}

	f, err := p.readHandshake()
	if err != nil {
		return err
	}
	if f.Type != engine.TypeHello {
		return fmt.Errorf("wirepeer: node's first frame is %v, want HELLO", f.Type)
	}
	p.RemoteRaw = f.Payload
	if p.Remote, err = engine.ParseHello(f.Payload); err != nil {
		return fmt.Errorf("wirepeer: node's HELLO: %w", err)
	}
	if p.Params, err = engine.Negotiate(h, p.Remote); err != nil {
		return fmt.Errorf("wirepeer: negotiating: %w", err)
	}
	p.version = p.Params.Version
	p.seq = p.Params.Capabilities&engine.CapSeq != 0
	ours, theirs := o.Key != nil, p.Remote.Capabilities&engine.CapPSK != 0
	if o.HelloOnly || !ours && !theirs {
		return nil
	}
	if !ours || !theirs { // the node refuses: read its GOAWAY
		if f, err = p.readHandshake(); err != nil {
			return err
		}
		return fmt.Errorf("wirepeer: node sent %v to a peer it cannot authenticate", f.Type)
	}
	return p.noise()
}

// noise runs the Noise handshake in AUTH frames (engine/noise.go), then
// seals the connection: every byte written and read from here on is a
// record.
func (p *Peer) noise() error {
	dialer, accepter := p.LocalRaw, p.RemoteRaw
	if p.role != engine.RoleDialer {
		dialer, accepter = accepter, dialer
	}
	hs, err := engine.NewNoiseHandshake(p.opts.Key, p.role == engine.RoleDialer, engine.NoisePrologue(dialer, accepter))
	if err != nil {
		return err
	}
	var c1, c2 *noise.CipherState
	if p.role == engine.RoleDialer {
		msg, _, _, err := hs.WriteMessage(nil, nil)
		if err != nil {
			return err
		}
		if err := p.Write(AppendFrame(nil, engine.Header{Version: p.version, Type: engine.TypeAuth}, 0, msg)); err != nil {
			return fmt.Errorf("wirepeer: sending AUTH: %w", err)
		}
	}
	f, err := p.readHandshake()
	if err != nil {
		return err
	}
	if f.Type != engine.TypeAuth {
		return fmt.Errorf("wirepeer: node sent %v, want AUTH", f.Type)
	}
	if _, c1, c2, err = hs.ReadMessage(nil, f.Payload); err != nil {
		return fmt.Errorf("wirepeer: node's AUTH: %w: %v", engine.ErrKeyMismatch, err)
	}
	send, recv := c1, c2
	if p.role != engine.RoleDialer {
		msg, a, b, err := hs.WriteMessage(nil, nil)
		if err != nil {
			return err
		}
		if err := p.Write(AppendFrame(nil, engine.Header{Version: p.version, Type: engine.TypeAuth}, 0, msg)); err != nil {
			return fmt.Errorf("wirepeer: sending AUTH: %w", err)
		}
		send, recv = b, a
	}
	left, _ := p.br.Peek(p.br.Buffered())
	sealed := carriers.Sealed(p.conn, append([]byte(nil), left...), engine.NewRecordSealer(send), engine.NewRecordOpener(recv))
	p.w, p.br = sealed, bufio.NewReaderSize(sealed, 64<<10)
	return nil
}

// readHandshake reads one handshake frame; a GOAWAY is a *RefusedError.
func (p *Peer) readHandshake() (*Frame, error) {
	f, err := ReadFrame(p.br, false, engine.MaxHelloPayload)
	if err != nil {
		return nil, fmt.Errorf("wirepeer: reading the handshake: %w", err)
	}
	if f.Type == engine.TypeGoAway {
		p.noteGoAway(f)
		return nil, &RefusedError{Reason: *p.goAway}
	}
	return f, nil
}

// Seq reports whether the link agreed CapSeq.
func (p *Peer) Seq() bool { return p.seq }

// Version is the version byte this peer's headers carry.
func (p *Peer) Version() uint8 { return p.version }

// NextID allocates the next stream id of this peer's parity.
func (p *Peer) NextID() uint32 {
	id := p.nextID
	p.nextID += 2
	return id
}

// GoAway is the last GOAWAY the node sent that this peer has read, or nil.
func (p *Peer) GoAway() *engine.Reason { return p.goAway }

func (p *Peer) noteGoAway(f *Frame) {
	r, err := f.Reason()
	if err != nil {
		r = engine.Reason{Code: engine.Code(0xFFFF), Text: fmt.Sprintf("malformed GOAWAY: %v", err)}
	}
	p.goAway = &r
}

// Close closes the connection.
func (p *Peer) Close() error { return p.conn.Close() }

// CloseWrite shuts the peer's write side: the node reads the end of the
// carrier.
func (p *Peer) CloseWrite() error { return p.conn.CloseWrite() }
