package actors

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/proxy"
)

// proxyHandshakeTimeout bounds a proxy client's request.
const proxyHandshakeTimeout = 30 * time.Second

// proxyReply is what a -D stream tells its client once the peer has
// answered the OPEN: ok on OPEN_OK, the failure for a code on OPEN_FAIL.
type proxyReply struct {
	req proxy.ProxyRequest
}

func (p *proxyReply) ok() []byte                   { return p.req.Reply(true, 0) }
func (p *proxyReply) fail(code engine.Code) []byte { return p.req.Reply(false, code) }

// proxyClient runs the SOCKS5/HTTP CONNECT handshake with a client of a -D
// forward, in a goroutine the forward's Listener owns. A destination that
// --direct matches is dialled here and relayed; any other is handed back to
// the Listener to be carried over the link.
func (l *listenerActor) proxyClient(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(proxyHandshakeTimeout))
	br := bufio.NewReaderSize(conn, 4096)
	req, err := proxy.ProxyHandshake(br, conn, l.env.policies().ProxyAuth)
	_ = conn.SetDeadline(time.Time{})
	if err != nil {
		l.env.warn("proxy request refused", "forward", l.fwd.String(), "client", conn.RemoteAddr().String(), "err", err)
		conn.Close()
		return
	}
	// What goes first to the destination: a plain-HTTP request's head, then
	// whatever the client sent after its request.
	rest, _ := br.Peek(br.Buffered())
	first := append(append([]byte(nil), req.Request...), rest...)
	if d := l.env.policies().Direct; d != nil && d.Allows(req.Target) {
		l.env.log.Debug("proxy request dialled directly", "target", req.Target)
		relayDirect(l.env, conn, req, first, l.env.cfg.dialTarget)
		return
	}
	l.env.send(l.self, &accepted{conn: conn, target: req.Target, first: first, reply: &proxyReply{req: req}})
}

// relayDirect dials target here and relays between it and client.
func relayDirect(e *env, client net.Conn, req proxy.ProxyRequest, first []byte, dial func(context.Context, string) (net.Conn, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	up, err := dial(ctx, req.Target)
	cancel()
	if err != nil {
		code := dialCode(err)
		e.warn("direct dial failed", "target", req.Target, "err", err)
		client.Write(req.Reply(false, code))
		client.Close()
		return
	}
	if ok := req.Reply(true, 0); len(ok) > 0 {
		if _, err := client.Write(ok); err != nil {
			up.Close()
			client.Close()
			return
		}
	}
	if len(first) > 0 {
		if _, err := up.Write(first); err != nil {
			up.Close()
			client.Close()
			return
		}
	}
	relay(client, up)
}

// relay copies both ways until both directions end, keeping half-closes.
func relay(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(b, a)
		halfClose(b)
		close(done)
	}()
	_, _ = io.Copy(a, b)
	halfClose(a)
	<-done
	a.Close()
	b.Close()
}

func halfClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	c.Close()
}

// serveProxyHere is the target of a "-R port:socks" stream: a proxy whose
// connections leave from this side, under this side's --allow-target
// policy. conn is this end of a pipe whose other end is the stream.
func serveProxyHere(e *env, conn net.Conn, policy *forward.TargetPolicy) {
	br := bufio.NewReaderSize(conn, 4096)
	req, err := proxy.ProxyHandshake(br, conn, e.policies().ProxyAuth)
	if err != nil {
		e.warn("proxy request refused", "forward", "-R socks", "err", err)
		conn.Close()
		return
	}
	if !policy.Allows(req.Target) {
		e.warn("proxy request refused", "forward", "-R socks", "target", req.Target, "reason", "not allowed by --allow-target")
		conn.Write(req.Reply(false, engine.CodeRefused))
		conn.Close()
		return
	}
	rest, _ := br.Peek(br.Buffered())
	relayDirect(e, conn, req, append(append([]byte(nil), req.Request...), rest...), e.cfg.dialTarget)
}

// dialCode is the reason code of a failed target dial: the host unknown or
// unreachable (a name that does not resolve, no route to it), the dial
// timed out, or it failed otherwise (refused, most often).
func dialCode(err error) engine.Code {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return engine.CodeUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return engine.CodeTimeout
	}
	return engine.CodeDialFailed
}
