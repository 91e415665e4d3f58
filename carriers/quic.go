package carriers

// QUIC carriers: quic://host:port, one bidirectional QUIC stream of one
// QUIC connection as the carrier. github.com/quic-go/quic-go does QUIC,
// its TLS 1.3 handshake (the certificates and verification of tls://),
// loss recovery and congestion control, and keeps a connection across a
// change of the client's address (a NAT rebinding) without a redial. A
// listener is one UDP socket for all its connections.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/sockmux/sockmux/internal/ratelog"
)

// ErrQUICPreamble is a QUIC connection whose stream did not open with
// the carrier's preamble: not a sockmux dialler, or another version.
var ErrQUICPreamble = errors.New("not a sockmux quic carrier")

// The carrier stream's preamble, written by the dialler as soon as it has
// opened the stream: a QUIC stream exists for the peer only once bytes
// are sent on it, and either side of a link may speak first.
//
//	+------+------+------+---------+
//	| 'S'  | 'M'  | 'Q'  | version |   4 bytes, version = 1
//	+------+------+------+---------+
var quicPreamble = [4]byte{'S', 'M', 'Q', 1}

// quicALPN is the TLS application protocol a QUIC carrier negotiates
// (QUIC requires one).
const quicALPN = "sockmux"

// The application error codes a carrier closes its QUIC connection with.
const (
	quicCodeClosed  quic.ApplicationErrorCode = 0 // Close: the link is done with it
	quicCodeRefused quic.ApplicationErrorCode = 1 // the listener refused it: busy, closing, no preamble
)

const (
	// quicIdleTimeout is how long a QUIC connection lives without a
	// packet from the peer; sockmux's own PINGs find a dead peer sooner.
	quicIdleTimeout = 30 * time.Second
	// quicKeepAlive is how often an idle connection sends a packet, well
	// within quicIdleTimeout and within the 30 s after which many NATs
	// forget a UDP mapping.
	quicKeepAlive = 10 * time.Second
	// quicStreamWindow and quicConnWindow bound QUIC's flow-control
	// windows (auto-tuned up to these): room for a 50 ms path at a few
	// hundred Mbit/s.
	quicStreamWindow = 16 << 20
	quicConnWindow   = 24 << 20
	// quicMaxPending bounds a listener's connections whose handshake is
	// done but whose carrier stream has not yet opened with the preamble,
	// or is not yet taken by Accept: past it new connections are refused.
	quicMaxPending = 64
	// quicBufferWant is the UDP socket buffer quic-go asks for (7 MiB);
	// a smaller one is logged at debug.
	quicBufferWant = 7 << 20
)

// quicConfig is the QUIC configuration of one side: the server accepts
// one bidirectional stream per connection (the carrier) and the client
// none; both accept one unidirectional stream, the end-of-stream
// acknowledgement of quicConn.Close.
func quicConfig(server bool) *quic.Config {
	bidi := int64(-1)
	if server {
		bidi = 1
	}
	return &quic.Config{
		HandshakeIdleTimeout:       DialTimeout / 2, // the handshake fails after twice this
		MaxIdleTimeout:             quicIdleTimeout,
		KeepAlivePeriod:            quicKeepAlive,
		MaxStreamReceiveWindow:     quicStreamWindow,
		MaxConnectionReceiveWindow: quicConnWindow,
		MaxIncomingStreams:         bidi,
		MaxIncomingUniStreams:      1,
	}
}

// quietBuffers turns quic-go's own warning about small UDP buffers off (it
// goes to the standard logger, once per process); each socket's buffers
// are checked and logged at debug instead (checkBuffers). A setting in the
// environment is left alone.
var quietBuffers sync.Once

const quicBufferWarningEnv = "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING"

func quietBufferWarning() {
	quietBuffers.Do(func() {
		if _, set := os.LookupEnv(quicBufferWarningEnv); !set {
			_ = os.Setenv(quicBufferWarningEnv, "true")
		}
	})
}

// checkBuffers logs at debug when udp's buffers are smaller than quic-go
// asked for (it sizes them when the transport starts): throughput suffers
// on a fast path. Raise net.core.rmem_max and wmem_max, or run with
// CAP_NET_ADMIN.
func checkBuffers(udp *net.UDPConn, log *slog.Logger) {
	rcv, snd, err := socketBuffers(udp)
	if err != nil {
		log.Debug("quic: cannot read the udp buffer sizes", "err", err)
		return
	}
	if rcv < quicBufferWant || snd < quicBufferWant {
		log.Debug("quic: udp buffers smaller than wanted; raise net.core.rmem_max and net.core.wmem_max for speed",
			"local", udp.LocalAddr().String(), "receive", rcv, "send", snd, "want", quicBufferWant)
	}
}

// quicDialer dials one QUIC connection, from a UDP socket of its own, per
// carrier.
type quicDialer struct {
	hostport string
	tls      *tls.Config
	binds    *bindSet
	log      *slog.Logger
	checked  sync.Once // the buffer sizes are logged once per dialler
}

func newQUICDialer(a address, o *options) (Dialer, error) {
	if o.proxy.fixed != nil {
		return nil, fmt.Errorf("%w %q: quic runs on UDP, which no HTTP or SOCKS5 proxy here carries", ErrBadAddress, "quic://"+a.hostport)
	}
	if o.tls.CAFile == "" && o.tls.Fingerprint == "" {
		return nil, fmt.Errorf("%w: dialling quic://%s needs a CA file or a certificate fingerprint to verify the server with", ErrTLSConfig, a.hostport)
	}
	cfg, err := clientTLSConfig(a.hostport, o.tls)
	if err != nil {
		return nil, err
	}
	cfg.NextProtos = []string{quicALPN}
	quietBufferWarning()
	return &quicDialer{hostport: a.hostport, tls: cfg, binds: o.binds, log: o.log}, nil
}

func (d *quicDialer) String() string { return "quic://" + d.hostport }

// Dial runs the QUIC handshake (TLS 1.3 inside it: a certificate that
// fails verification is ErrFingerprint or ErrUnknownCA here) and opens the
// carrier stream, within ctx and DialTimeout.
func (d *quicDialer) Dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	raddr, err := resolveUDP(ctx, d.hostport)
	if err != nil {
		return nil, err
	}
	udp, done, err := d.socket(raddr)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	release := func() {
		tr.Close()
		udp.Close()
		done()
	}
	c, err := d.dial(ctx, tr, raddr)
	if err != nil {
		release()
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, fmt.Errorf("quic handshake with %s: %w", d.hostport, classifyTLS(err))
	}
	d.checked.Do(func() { checkBuffers(udp, d.log) })
	c.release = release
	return c, nil
}

func (d *quicDialer) dial(ctx context.Context, tr *quic.Transport, raddr *net.UDPAddr) (*quicConn, error) {
	qc, err := tr.Dial(ctx, raddr, d.tls, quicConfig(false))
	if err != nil {
		return nil, err
	}
	st, err := qc.OpenStreamSync(ctx)
	if err == nil {
		if dl, ok := ctx.Deadline(); ok {
			_ = st.SetWriteDeadline(dl)
		}
		_, err = st.Write(quicPreamble[:])
		_ = st.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		_ = qc.CloseWithError(quicCodeClosed, "")
		return nil, err
	}
	return newQUICConn(qc, st), nil
}

// socket is the UDP socket of one dial: from the next local bind, if any
// (the func gives it back), else from any address of raddr's family.
func (d *quicDialer) socket(raddr *net.UDPAddr) (*net.UDPConn, func(), error) {
	network, local := "udp4", &net.UDPAddr{IP: net.IPv4zero}
	if raddr.IP.To4() == nil {
		network, local = "udp6", &net.UDPAddr{IP: net.IPv6unspecified}
	}
	if d.binds == nil {
		udp, err := net.ListenUDP(network, local)
		return udp, func() {}, err
	}
	b, done := d.binds.take()
	lc := net.ListenConfig{}
	if b.IP != nil {
		local = &net.UDPAddr{IP: b.IP}
	}
	if b.Iface != "" {
		lc.Control = func(_, _ string, c syscall.RawConn) error { return bindToDevice(c, b.Iface) }
	}
	pc, err := lc.ListenPacket(context.Background(), network, local.String())
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("from %s: %w", b, err)
	}
	return pc.(*net.UDPConn), done, nil
}

// resolveUDP resolves host:port within ctx: a name is dialled at its
// first IPv4 address, else its first IPv6 one (UDP has no connection
// refused to fall back on, so trying each in turn would cost a handshake
// timeout each).
func resolveUDP(ctx context.Context, hostport string) (*net.UDPAddr, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	pick := ips[0]
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			pick = ip
			break
		}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(pick.Unmap(), uint16(p))), nil
}

// quicServerTLS is a QUIC listener's TLS configuration: serverTLSConfig's,
// but with client certificates (TLSConfig.ClientCAFile) checked here
// rather than by crypto/tls, so that a refused one is told to warn with
// the peer's address: quic-go drops a failed handshake without a word.
func quicServerTLS(o *options, warn func(peer string, err error)) (*tls.Config, error) {
	base, err := serverTLSConfig(o.tls, o)
	if err != nil {
		return nil, err
	}
	base.NextProtos = []string{quicALPN}
	pool := base.ClientCAs
	if pool == nil {
		return base, nil
	}
	base.ClientAuth = tls.RequestClientCert
	return &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: base.NextProtos,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			peer := "unknown"
			if hello.Conn != nil { // quic-go gives the addresses
				peer = hello.Conn.RemoteAddr().String()
			}
			cfg := base.Clone()
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				err := verifyClientCert(pool, cs)
				if err != nil {
					warn(peer, err)
				}
				return err
			}
			return cfg, nil
		}}, nil
}

// verifyClientCert is crypto/tls's check of RequireAndVerifyClientCert: a
// certificate, for client authentication, that chains to pool.
func verifyClientCert(pool *x509.CertPool, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: client didn't provide a certificate")
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("tls: failed to verify client certificate: %w", err)
	}
	return nil
}

// quicListener accepts QUIC connections on one UDP socket and hands each
// one's carrier stream to Accept once it has opened with the preamble. A
// connection that is slow to open its stream does not hold up the others;
// at most quicMaxPending wait. The socket stays open, shared, until the
// listener and every carrier it accepted are closed.
type quicListener struct {
	udp   *net.UDPConn
	tr    *quic.Transport
	ln    *quic.Listener
	log   *slog.Logger
	limit *ratelog.Limiter // refused connections: a peer can repeat them at will

	ctx     context.Context
	cancel  context.CancelFunc
	ready   chan *quicConn
	pending chan struct{} // a slot per connection not yet taken by Accept
	wg      sync.WaitGroup
	failed  chan struct{} // closed when the QUIC listener fails under us
	failErr error

	mu    sync.Mutex
	users int // the listener itself and each carrier it accepted
}

func listenQUIC(a address, o *options) (net.Listener, error) {
	limit := ratelog.New(0)
	cfg, err := quicServerTLS(o, func(peer string, err error) {
		limit.Warn(o.log, "quic handshake failed", "peer", peer, "err", err)
	})
	if err != nil {
		return nil, err
	}
	quietBufferWarning()
	laddr, err := net.ResolveUDPAddr("udp", a.hostport)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadAddress, "quic://"+a.hostport, err)
	}
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(cfg, quicConfig(true))
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, err
	}
	checkBuffers(udp, o.log)
	ctx, cancel := context.WithCancel(context.Background())
	l := &quicListener{udp: udp, tr: tr, ln: ln, log: o.log, limit: limit, ctx: ctx, cancel: cancel,
		ready: make(chan *quicConn), pending: make(chan struct{}, quicMaxPending), failed: make(chan struct{}), users: 1}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// acceptLoop takes each handshaken connection and opens its carrier in a
// goroutine of its own, while there is a slot for it.
func (l *quicListener) acceptLoop() {
	defer l.wg.Done()
	for {
		qc, err := l.ln.Accept(l.ctx)
		if err != nil {
			if l.ctx.Err() == nil { // closed under us
				l.failErr = fmt.Errorf("quic listener: %w", err)
				close(l.failed)
			}
			return
		}
		select {
		case l.pending <- struct{}{}:
			l.wg.Add(1)
			go l.serve(qc)
		default:
			_ = qc.CloseWithError(quicCodeRefused, "busy")
			l.limit.Warn(l.log, "quic connection refused: too many pending", "peer", qc.RemoteAddr().String(), "pending", quicMaxPending)
		}
	}
}

// serve waits, within DialTimeout, for qc's carrier stream and its
// preamble, and hands the carrier to Accept.
func (l *quicListener) serve(qc *quic.Conn) {
	defer l.wg.Done()
	defer func() { <-l.pending }()
	ctx, cancel := context.WithTimeout(l.ctx, DialTimeout)
	defer cancel()
	st, err := acceptCarrier(ctx, qc)
	if err != nil {
		_ = qc.CloseWithError(quicCodeRefused, "no carrier stream")
		if l.ctx.Err() == nil {
			l.limit.Warn(l.log, "quic carrier refused", "peer", qc.RemoteAddr().String(), "err", err)
		}
		return
	}
	c := newQUICConn(qc, st)
	l.mu.Lock()
	l.users++
	l.mu.Unlock()
	c.release = l.release
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// acceptCarrier accepts qc's stream and reads the preamble off it.
func acceptCarrier(ctx context.Context, qc *quic.Conn) (*quic.Stream, error) {
	st, err := qc.AcceptStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("waiting for the carrier stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var got [len(quicPreamble)]byte
	n := 0
	for n < len(got) && err == nil {
		var k int
		k, err = st.Read(got[n:])
		n += k
	}
	if n < len(got) {
		return nil, fmt.Errorf("%w: the stream ended after %d bytes: %w", ErrQUICPreamble, n, err)
	}
	if got != quicPreamble {
		return nil, fmt.Errorf("%w: it opened with %q", ErrQUICPreamble, got[:])
	}
	if !stop() { // ctx ended as the preamble came: the deadline is spent
		return nil, fmt.Errorf("waiting for the preamble: %w", ctx.Err())
	}
	return st, nil
}

// release lets go of one user of the socket, closing it after the last.
func (l *quicListener) release() {
	l.mu.Lock()
	l.users--
	last := l.users == 0
	l.mu.Unlock()
	if last {
		l.tr.Close()
		l.udp.Close()
	}
}

// Accept returns the next carrier whose stream opened with the preamble.
func (l *quicListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: "quic", Addr: l.Addr(), Err: net.ErrClosed}
	case <-l.failed:
		return nil, l.failErr
	}
}

// Close stops accepting and ends the connections not yet accepted; the
// carriers Accept returned go on until they are closed.
func (l *quicListener) Close() error {
	if l.ctx.Err() != nil {
		return &net.OpError{Op: "close", Net: "quic", Addr: l.Addr(), Err: net.ErrClosed}
	}
	l.cancel()
	err := l.ln.Close()
	l.wg.Wait()
	l.release()
	return err
}

// Addr is the UDP address listened on.
func (l *quicListener) Addr() net.Addr { return l.udp.LocalAddr() }

// UDPAddress is the host:port a quic:// carrier address listens on or
// dials, "" for the other kinds and for what does not parse.
func UDPAddress(addr string) string {
	a, err := parse(addr)
	if err != nil || a.scheme != "quic" {
		return ""
	}
	return a.hostport
}
