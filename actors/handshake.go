package actors

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/flynn/noise"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/preauth"
)

// handshaker runs one carrier's handshake: HELLOs both ways, then, when
// both sides have a pre-shared key, the Noise handshake in AUTH frames,
// after which the carrier is sealed (carriers.Sealed). Frames go out through
// one writer goroutine, in order, while this side reads, so two peers
// writing at once on a carrier with no buffering cannot deadlock.
type handshaker struct {
	hello   *engine.Hello
	key     []byte
	maxSkew time.Duration
	replay  *engine.ReplayCache
	now     func() time.Time
	// link, when set, offers CapSeq with these link extensions; a join
	// then waits for the accepter's ACK.
	link *engine.LinkHello
	// identity is this side's static key; requireIdentity refuses a peer
	// with none; verifyPeer checks the peer's key (engine.HandshakeConfig).
	identity        *noise.DHKey
	requireIdentity bool
	verifyPeer      func([]byte) error

	out chan []byte
}

// run returns the outcome; a refusal is told to the peer in a GOAWAY
// before run returns. A carrier accepted through gateLinks holds a
// pre-authentication slot until run returns: its first byte makes it
// active (no longer evictable), and a handshake the gate cut says so.
func (h *handshaker) run(conn net.Conn, timeout time.Duration) *handshakeDone {
	var src io.Reader = conn
	slot := preauth.Lookup(conn)
	if slot != nil {
		defer slot.Done()
		src = slot.Conn()
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	h.out = make(chan []byte, 4)
	werr := make(chan error, 1)
	go func() {
		var err error
		for b := range h.out {
			if err == nil {
				_, err = conn.Write(b)
			}
		}
		werr <- err
	}()
	res := h.exchange(src, conn)
	close(h.out)
	if res.err != nil {
		// The handshake is over and failed: what the writer still holds
		// (a GOAWAY for the peer, or our half of an exchange the peer
		// has given up on) gets refusalLinger to go, not the rest of
		// the handshake timeout. On a carrier with no buffering (a
		// net.Pipe) a peer that stopped reading would otherwise keep both
		// sides' writers, and so both handshakes, waiting that long.
		_ = conn.SetWriteDeadline(time.Now().Add(refusalLinger))
	}
	if e := <-werr; e != nil && res.err == nil {
		res.err = fmt.Errorf("sending handshake: %w", e)
	}
	if res.err != nil && slot != nil {
		if why := slot.Err(); why != nil {
			res.err = fmt.Errorf("%w: %w", why, res.err)
		}
	}
	if res.err == nil {
		res.authed = res.authed || tlsVerified(conn)
	}
	if res.conn == nil || res.err != nil {
		res.conn = conn
	}
	return res
}

// exchange runs the engine's handshake over src (the carrier, or its
// first-byte detector) and h.out: it reads, the engine decides. Once the
// engine has a channel (both sides keyed), what comes after the peer's
// last AUTH is read through the records, starting with the bytes the
// reader holds already, and the carrier the link gets is conn sealed.
func (h *handshaker) exchange(src io.Reader, conn net.Conn) *handshakeDone {
	hs := engine.NewHandshake(engine.HandshakeConfig{Hello: h.hello, Key: h.key, MaxSkew: h.maxSkew, Replay: h.replay, Link: h.link,
		Identity: h.identity, RequireIdentity: h.requireIdentity, VerifyPeer: h.verifyPeer}, h.now())
	r := engine.NewReader(src, readBufferSize)
	var sealed net.Conn
	for {
		for _, b := range hs.Output() {
			h.out <- b
		}
		if hs.Done() {
			break
		}
		f, err := r.ReadFrame()
		if err != nil {
			hs.ReadFailed(err)
			continue
		}
		hs.Input(f, h.now())
		f.Release()
		if s, o := hs.Channel(); s != nil && sealed == nil {
			sealed = carriers.Sealed(conn, r.TakeBuffered(), s, o)
			r = engine.NewReader(sealed, readBufferSize)
		}
		if v, max, seq := hs.ReaderSettings(); v != 0 { // after the HELLO: what was agreed
			r.Version, r.MaxPayload, r.Seq = v, max, seq
		}
	}
	res, err := hs.Result()
	if err != nil {
		return &handshakeDone{err: err}
	}
	r.StreamOrder = streamOrder(res.Params)
	return &handshakeDone{conn: sealed, sealed: sealed != nil, reader: r, params: res.Params, authed: res.Authed, link: res.Link, joinAck: res.JoinAck, peerKey: res.PeerKey}
}

// tlsVerified reports whether conn is TLS with a verified peer
// certificate: a client certificate checked against --tls-client-ca, or a
// server certificate checked by CA or fingerprint.
func tlsVerified(conn net.Conn) bool {
	tc, ok := conn.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return false
	}
	cs := tc.ConnectionState()
	return cs.HandshakeComplete && len(cs.PeerCertificates) > 0
}

// refusalLinger is how long a failed handshake's last writes may take.
const refusalLinger = time.Second

// handshakeGrace is how much longer than the handshake timeout the gate
// waits before it closes a carrier whose handshake has not ended: the
// handshake's own deadline comes first, with the clearer error.
const handshakeGrace = time.Second

// gateLinks puts a link listener reachable over the network (tcp://,
// tls://, ws://, wss://, quic://) behind a pre-authentication gate with the default limits
// (see package preauth), unless the caller has gated it already with
// limits of its own. Each accepted carrier then holds a slot until its
// HELLO exchange ends (run calls Done): when the gate is full, the oldest
// carrier that has sent nothing is closed for the new one, so silent
// connections can neither pile up nor keep a real peer out. Pipes, fifos
// and devices are not gated: they serve one carrier at a time, and a peer
// on a serial line may well be silent for a while.
func gateLinks(ln net.Listener, e *env) net.Listener {
	if _, ok := ln.(*preauth.Listener); ok {
		return ln
	}
	switch ln.Addr().(type) {
	case *net.TCPAddr, *net.UDPAddr: // UDP: a quic:// listener's carriers
	default:
		return ln
	}
	return preauth.Listen(ln, preauth.Config{
		FirstByteTimeout: min(preauth.DefaultFirstByteTimeout, e.cfg.HandshakeTimeout),
		Timeout:          e.cfg.HandshakeTimeout + handshakeGrace,
		Logger:           e.log,
	})
}

// streamOrder reports whether a link delivers each stream in its own
// order (engine/order.go): both sides sequence frames and agreed
// CapStreamOrder.
func streamOrder(p engine.Params) bool {
	const both = engine.CapSeq | engine.CapStreamOrder
	return p.Capabilities&both == both
}
