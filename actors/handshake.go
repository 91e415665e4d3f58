package actors

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"sockmux/engine"
	"sockmux/internal/preauth"
)

// ErrPeerRefused is a handshake the peer ended with a GOAWAY; the error
// carries the peer's reason.
var ErrPeerRefused = errors.New("peer refused the link")

// handshaker runs one carrier's handshake: HELLOs both ways, then, when
// either side has a pre-shared key, AUTH both ways. Frames go out through
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
	res := h.exchange(src)
	close(h.out)
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
	return res
}

func (h *handshaker) send(t engine.Type, payload []byte) {
	f := &engine.Frame{Type: t}
	if len(payload) > 0 {
		f.Payload = engine.GetBuffer(len(payload))
		copy(f.Payload.B, payload)
	}
	h.out <- engine.AppendFrame(nil, f, h.hello.MaxVersion)
	f.Release()
}

// refuse tells the peer why the handshake ends, and returns err.
func (h *handshaker) refuse(code engine.Code, err error) *handshakeDone {
	h.send(engine.TypeGoAway, engine.AppendReason(nil, code, err.Error()))
	return &handshakeDone{err: err}
}

// exchange reads the peer's frames from src: the carrier, or its
// first-byte detector.
func (h *handshaker) exchange(src io.Reader) *handshakeDone {
	if h.key != nil {
		h.hello.Capabilities |= engine.CapPSK
	}
	if h.link != nil {
		engine.SetLinkHello(h.hello, *h.link)
	}
	engine.AddFreshness(h.hello, h.now())
	ours := engine.AppendHello(nil, h.hello)
	h.send(engine.TypeHello, ours)

	r := engine.NewReader(src, readBufferSize)
	in, err := r.ReadFrame()
	if err != nil {
		if errors.Is(err, engine.ErrProtocol) {
			return h.refuse(engine.CodeProtocol, fmt.Errorf("reading HELLO: %w", err))
		}
		return &handshakeDone{err: fmt.Errorf("reading HELLO: %w", err)}
	}
	theirs := append([]byte(nil), in.Bytes()...)
	in.Release()
	peer, err := engine.ParseHello(theirs)
	if err != nil {
		return h.refuse(engine.CodeProtocol, fmt.Errorf("reading HELLO: %w", err))
	}
	p, err := engine.Negotiate(h.hello, peer)
	if err != nil {
		code := engine.CodeProtocol
		if errors.Is(err, engine.ErrVersion) {
			code = engine.CodeVersion
		}
		return h.refuse(code, err)
	}
	r.Version, r.MaxPayload = p.Version, p.RecvMax
	var lh engine.LinkHello
	if p.Capabilities&engine.CapSeq != 0 {
		if lh, err = engine.ParseLinkHello(peer); err != nil {
			return h.refuse(engine.CodeProtocol, err)
		}
		r.Seq = true
	}

	peerKey := peer.Capabilities&engine.CapPSK != 0
	switch {
	case h.key == nil && !peerKey:
		return h.joined(r, &handshakeDone{reader: r, params: p, link: lh})
	case h.key == nil:
		return h.refuse(engine.CodeAuth, engine.ErrNoLocalKey)
	case !peerKey:
		return h.refuse(engine.CodeAuth, engine.ErrNoPeerKey)
	}
	if err := engine.CheckFreshness(peer, h.now(), h.maxSkew, h.replay); err != nil {
		return h.refuse(engine.CodeAuth, err)
	}
	h.send(engine.TypeAuth, engine.AuthMAC(h.key, h.hello.Role, ours, theirs))
	f, err := r.ReadFrame()
	if err != nil {
		return &handshakeDone{err: fmt.Errorf("reading AUTH: %w", err)}
	}
	defer f.Release()
	switch f.Type {
	case engine.TypeAuth:
	case engine.TypeGoAway:
		reason, _ := engine.ParseReason(f.Bytes())
		if reason.Code == engine.CodeAuth {
			return &handshakeDone{err: fmt.Errorf("%w: %w: %s", ErrPeerRefused, engine.ErrAuth, reason.Text)}
		}
		if reason.Code == engine.CodeVersion {
			return &handshakeDone{err: fmt.Errorf("%w: %w: %s", ErrPeerRefused, engine.ErrVersion, reason.Text)}
		}
		return &handshakeDone{err: fmt.Errorf("%w: %v", ErrPeerRefused, reason)}
	default:
		return h.refuse(engine.CodeProtocol, fmt.Errorf("%w: %v during the handshake, want AUTH", engine.ErrStreamState, f.Type))
	}
	if err := engine.VerifyAuth(h.key, peer.Role, f.Bytes(), theirs, ours); err != nil {
		return h.refuse(engine.CodeAuth, err)
	}
	return h.joined(r, &handshakeDone{reader: r, params: p, authed: true, link: lh})
}

// joined completes a join on the dialling side: the accepter answers it
// with an ACK (what it has received of the link), or refuses it with a
// GOAWAY.
func (h *handshaker) joined(r *engine.Reader, res *handshakeDone) *handshakeDone {
	if h.link == nil || !h.link.Join || res.params.Capabilities&engine.CapSeq == 0 {
		return res
	}
	f, err := r.ReadFrame()
	if err != nil {
		return &handshakeDone{err: fmt.Errorf("waiting for the answer to our join: %w", err)}
	}
	defer f.Release()
	switch f.Type {
	case engine.TypeAck:
		if res.joinAck, err = engine.ParseAck(f.Bytes()); err != nil {
			return h.refuse(engine.CodeProtocol, err)
		}
		return res
	case engine.TypeGoAway:
		reason, _ := engine.ParseReason(f.Bytes())
		switch reason.Code {
		case engine.CodeUnknownLink, engine.CodeResumeExpired:
			return &handshakeDone{err: fmt.Errorf("%w: %w: %s", ErrPeerRefused, engine.ErrUnknownLink, reason.Text)}
		case engine.CodeAuth:
			return &handshakeDone{err: fmt.Errorf("%w: %w: %s", ErrPeerRefused, engine.ErrAuth, reason.Text)}
		}
		return &handshakeDone{err: fmt.Errorf("%w: %v", ErrPeerRefused, reason)}
	}
	return h.refuse(engine.CodeProtocol, fmt.Errorf("%w: %v in answer to a join, want ACK", engine.ErrStreamState, f.Type))
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

// handshakeGrace is how much longer than the handshake timeout the gate
// waits before it closes a carrier whose handshake has not ended: the
// handshake's own deadline comes first, with the clearer error.
const handshakeGrace = time.Second

// gateLinks puts a link listener reachable over the network (TCP: tcp://
// and tls://) behind a pre-authentication gate with the default limits
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
	if _, ok := ln.Addr().(*net.TCPAddr); !ok {
		return ln
	}
	return preauth.Listen(ln, preauth.Config{
		FirstByteTimeout: min(preauth.DefaultFirstByteTimeout, e.cfg.HandshakeTimeout),
		Timeout:          e.cfg.HandshakeTimeout + handshakeGrace,
		Logger:           e.log,
	})
}
