package carriers

// WebSocket carriers: ws://host:port/path over TCP, wss://host:port/path
// over TLS 1.3, the link's bytes in binary messages (github.com/coder/
// websocket does the framing). A listener serves the upgrade on its path
// and answers any other request with a plain 404; its TCP connections
// pass the same gate as a tls:// listener's until they are upgraded.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/sockmux/sockmux/internal/preauth"
)

// ErrNotWebSocket is a server that answered a WebSocket upgrade with an
// HTTP status other than 101 that retrying will not change (a 4xx: the
// wrong path, no WebSocket there); the message has its status line. A
// 5xx, as a reverse proxy answers while its upstream is down, is an error
// without it.
var ErrNotWebSocket = errors.New("not a WebSocket endpoint")

// maxUpgradeHead bounds the HTTP head of an upgrade, request or response.
const maxUpgradeHead = 64 << 10

// wsDialer dials TCP (through its proxy, if any), runs the TLS handshake
// for wss://, then the WebSocket upgrade.
type wsDialer struct {
	scheme   string // ws, wss
	hostport string
	uri      string // the path, escaped
	tls      *tls.Config
	net      netDialer
}

func newWSDialer(a address, o *options, nd netDialer) (Dialer, error) {
	d := &wsDialer{scheme: a.scheme, hostport: a.hostport, uri: a.wsURI, net: nd}
	if a.scheme == "wss" {
		cfg, err := clientTLSConfig(a.hostport, o.tls)
		if err != nil {
			return nil, err
		}
		// The upgrade is HTTP/1.1's: a reverse proxy that also speaks
		// HTTP/2 must not choose it.
		cfg.NextProtos = []string{"http/1.1"}
		d.tls = cfg
	}
	return d, nil
}

// hostHeader is the request's Host: host:port, or the host alone on the
// scheme's default port, as a browser sends it (a reverse proxy may route
// by it).
func (d *wsDialer) hostHeader() string {
	host, port, _ := net.SplitHostPort(d.hostport)
	if port == map[string]string{"ws": "80", "wss": "443"}[d.scheme] {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return d.hostport
}

func (d *wsDialer) String() string { return d.scheme + "://" + d.hostport + d.uri + d.net.via() }

// Dial connects and upgrades, within ctx and DialTimeout.
func (d *wsDialer) Dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	raw, err := d.net.dial(ctx, d.hostport)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	c, err := d.upgrade(ctx, raw)
	if !stop() && err == nil { // ctx ended as the upgrade did: raw's deadline is spent
		c.Close()
		c, err = nil, ctx.Err()
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

func (d *wsDialer) upgrade(ctx context.Context, raw net.Conn) (net.Conn, error) {
	conn := raw
	if d.tls != nil {
		tc := tls.Client(raw, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls handshake with %s: %w", d.hostport, classifyTLS(err))
		}
		conn = tc
	}
	out := newAsyncConn(conn)
	client := &http.Client{
		Transport:     &upgradeTransport{out: out},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// The URL's scheme only decides what the library expects; the
	// connection is made already.
	ws, resp, err := websocket.Dial(ctx, "http://"+d.hostport+d.uri, &websocket.DialOptions{
		HTTPClient: client,
		HTTPHeader: http.Header{"User-Agent": {"sockmux"}},
		Host:       d.hostHeader(),
	})
	if err != nil {
		out.Close()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			status := resp.Proto + " " + resp.Status
			if resp.StatusCode >= 500 {
				return nil, fmt.Errorf("%s answered %q to the WebSocket upgrade", d, status)
			}
			return nil, fmt.Errorf("%w: %s answered %q to the WebSocket upgrade", ErrNotWebSocket, d, status)
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, fmt.Errorf("websocket upgrade with %s: %w", d, err)
	}
	return newWSConn(ws, out, conn, true), nil
}

// upgradeTransport is the http.RoundTripper of one upgrade: it sends the
// request on the connection made for it and reads the answer, and a 101's
// body is the connection itself.
type upgradeTransport struct {
	out  *asyncConn
	used bool
}

func (t *upgradeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.used {
		return nil, errors.New("one request per carrier connection")
	}
	t.used = true
	if err := req.Write(t.out); err != nil {
		return nil, err
	}
	br := bufio.NewReader(io.LimitReader(t.out, maxUpgradeHead))
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &upgradedBody{br: br, c: t.out}
	} else {
		resp.Body = &closingBody{ReadCloser: resp.Body, c: t.out}
	}
	return resp, nil
}

// closingBody is a refused upgrade's body, whose Close closes the
// connection.
type closingBody struct {
	io.ReadCloser
	c io.Closer
}

func (b *closingBody) Close() error {
	b.ReadCloser.Close()
	return b.c.Close()
}

// wsServer upgrades one listener's connections.
type wsServer struct {
	path string
	tls  *tls.Config // wss
}

func listenWS(a address, o *options) (net.Listener, error) {
	s := &wsServer{path: a.wsPath}
	if a.scheme == "wss" {
		cfg, err := serverTLSConfig(o.tls, o)
		if err != nil {
			return nil, err
		}
		cfg.NextProtos = []string{"http/1.1"}
		s.tls = cfg
	}
	ln, err := net.Listen("tcp", a.hostport)
	if err != nil {
		return nil, err
	}
	return newUpgradeListener(ln, a.scheme, "websocket upgrade failed", s.upgrade, o), nil
}

func (s *wsServer) upgrade(ctx context.Context, raw net.Conn, e *preauth.Entry) (net.Conn, error) {
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	c, err := s.accept(ctx, raw, e)
	if !stop() && err == nil {
		c.Close()
		c, err = nil, ctx.Err()
	}
	return c, err
}

// errNotUpgrade is a request that is not a WebSocket upgrade on the path.
var errNotUpgrade = errors.New("not a WebSocket upgrade")

func (s *wsServer) accept(ctx context.Context, raw net.Conn, e *preauth.Entry) (net.Conn, error) {
	var conn net.Conn = e.Conn()
	shut := func() {
		if tc, ok := raw.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	if s.tls != nil {
		tc := tls.Server(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls handshake: %w", classifyTLS(err))
		}
		conn = tc
		shut = func() { _ = tc.CloseWrite() }
	}
	out := newAsyncConn(conn)
	respond := func(code int, h http.Header, body string) { respond(out, shut, code, h, body) }
	br := bufio.NewReader(io.LimitReader(out, maxUpgradeHead))
	req, err := http.ReadRequest(br)
	if err != nil {
		if !errors.Is(err, io.EOF) && ctx.Err() == nil {
			respond(http.StatusBadRequest, nil, "bad request\n")
		}
		return nil, fmt.Errorf("reading the upgrade request: %w", err)
	}
	if req.Method != http.MethodGet || req.URL.Path != s.path ||
		!hasToken(req.Header, "Connection", "upgrade") || !hasToken(req.Header, "Upgrade", "websocket") {
		respond(http.StatusNotFound, nil, "404 page not found\n")
		return nil, fmt.Errorf("%w on %s: %s %s", errNotUpgrade, s.path, req.Method, req.URL.RequestURI())
	}
	w := &upgradeWriter{conn: out, br: br, header: http.Header{}}
	ws, err := websocket.Accept(w, req, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // no browser: any Origin a proxy adds is fine
	})
	if err != nil {
		if !w.hijacked {
			respond(w.code, w.header, w.body.String())
		}
		return nil, err
	}
	return newWSConn(ws, out, conn, false), nil
}

// hasToken tells whether header name lists token (comma-separated, any
// case).
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// respond writes a whole plain-text response that closes the connection,
// and shuts the write side so that the peer sees all of it.
func respond(c net.Conn, shut func(), code int, h http.Header, body string) {
	if code == 0 {
		code = http.StatusInternalServerError
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	hdr := http.Header{}
	for k, v := range h {
		hdr[k] = v
	}
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("Connection", "close")
	hdr.Write(&b)
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := c.Write(b.Bytes()); err != nil {
		return
	}
	// Lingering: what the peer still sends is read for a moment, so that
	// closing does not reset the connection before it has the answer.
	shut()
	_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// upgradeWriter is the http.ResponseWriter websocket.Accept answers
// through: its 101 goes out at Hijack, anything else is kept for respond.
type upgradeWriter struct {
	conn     *asyncConn
	br       *bufio.Reader
	header   http.Header
	code     int
	body     bytes.Buffer
	hijacked bool
}

func (w *upgradeWriter) Header() http.Header { return w.header }

func (w *upgradeWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *upgradeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(b)
}

// Hijack writes the 101 with its headers and hands over the connection.
func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.code != http.StatusSwitchingProtocols {
		return nil, nil, fmt.Errorf("hijacking after status %d", w.code)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", w.code, http.StatusText(w.code))
	w.header.Write(&b)
	b.WriteString("\r\n")
	if _, err := w.conn.Write(b.Bytes()); err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	return w.conn, bufio.NewReadWriter(w.br, bufio.NewWriterSize(w.conn, 16<<10)), nil
}
