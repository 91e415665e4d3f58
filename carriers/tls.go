package carriers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sockmux/sockmux/internal/preauth"
)

// Errors of TLS carriers, for errors.Is.
var (
	// ErrFingerprint is a peer certificate whose SHA-256 fingerprint is not
	// the pinned one; the message names both.
	ErrFingerprint = errors.New("certificate fingerprint mismatch")
	// ErrUnknownCA is a peer certificate not signed by a trusted authority;
	// it wraps the x509.UnknownAuthorityError.
	ErrUnknownCA = errors.New("certificate signed by an unknown authority")
	// ErrTLSConfig is a TLS configuration that cannot work: no way to
	// verify the server, a malformed fingerprint, a certificate without
	// its key, a file that does not hold what it should.
	ErrTLSConfig = errors.New("bad tls configuration")
)

// TLSConfig is the configuration of a tls:// carrier. Files are PEM.
type TLSConfig struct {
	// CertFile and KeyFile are our certificate: the server's on Listen, a
	// client certificate on dial. Both or neither.
	CertFile, KeyFile string
	// CAFile (dial) holds the authorities that may sign the server's
	// certificate; the server's name must match the dialled host.
	CAFile string
	// Fingerprint (dial) pins the server's certificate by the SHA-256 of
	// its DER, in hex, with or without colons, in any case. With CAFile
	// too, both must hold.
	Fingerprint string
	// ClientCAFile (Listen) makes client certificates required: they must
	// be signed by one of its authorities.
	ClientCAFile string
	// StateDir (Listen without CertFile) keeps the self-signed certificate
	// generated on the first start (cert.pem, key.pem); DefaultStateDir()
	// when empty.
	StateDir string
}

// Names of the generated certificate's files in TLSConfig.StateDir.
const (
	GeneratedCertFile = "cert.pem"
	GeneratedKeyFile  = "key.pem"
)

// DefaultStateDir is where a TLS listener keeps its generated certificate
// when TLSConfig.StateDir is empty: $XDG_STATE_HOME/sockmux/tls, or
// ~/.local/state/sockmux/tls.
func DefaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sockmux", "tls"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w: no state directory: %v", ErrTLSConfig, err)
	}
	return filepath.Join(home, ".local", "state", "sockmux", "tls"), nil
}

// Fingerprint is the SHA-256 of a certificate's DER in lower-case hex, as
// TLS listeners log it and TLSConfig.Fingerprint pins it.
func Fingerprint(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return hex.EncodeToString(sum[:])
}

// ServerFingerprint is the fingerprint of the certificate a TLS listener
// with this configuration presents: CertFile's, or the one kept in
// StateDir, which is generated first when there is none yet.
func (t TLSConfig) ServerFingerprint() (string, error) {
	cert, _, _, err := t.serverCertificate()
	if err != nil {
		return "", err
	}
	return Fingerprint(cert.Certificate[0]), nil
}

// normalizeFingerprint accepts "AB:CD:..." or "abcd..." (an optional
// "sha256:" prefix too) and returns lower-case hex without colons.
func normalizeFingerprint(s string) (string, error) {
	f := strings.ToLower(strings.TrimSpace(s))
	f = strings.TrimPrefix(f, "sha256:")
	f = strings.ReplaceAll(f, ":", "")
	if b, err := hex.DecodeString(f); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%w: fingerprint %q is not a SHA-256 in hex", ErrTLSConfig, s)
	}
	return f, nil
}

// serverCertificate loads CertFile/KeyFile, or loads or makes the
// generated certificate.
func (t TLSConfig) serverCertificate() (cert tls.Certificate, path string, generated bool, err error) {
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := t.keyPair()
		return cert, t.CertFile, false, err
	}
	dir := t.StateDir
	if dir == "" {
		if dir, err = DefaultStateDir(); err != nil {
			return tls.Certificate{}, "", false, err
		}
	}
	cert, generated, err = loadOrGenerate(dir)
	return cert, filepath.Join(dir, GeneratedCertFile), generated, err
}

func (t TLSConfig) keyPair() (tls.Certificate, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return tls.Certificate{}, fmt.Errorf("%w: a certificate needs both a cert file and a key file", ErrTLSConfig)
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %v", ErrTLSConfig, err)
	}
	return cert, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTLSConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrTLSConfig, file)
	}
	return pool, nil
}

// genMu serialises load-or-generate within the process; a lock file does
// it between processes.
var genMu sync.Mutex

// loadOrGenerate returns the certificate kept in dir, making a self-signed
// ECDSA P-256 one first when there is none.
func loadOrGenerate(dir string) (cert tls.Certificate, generated bool, err error) {
	genMu.Lock()
	defer genMu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("%w: state directory: %v", ErrTLSConfig, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("%w: state directory: %v", ErrTLSConfig, err)
	}
	defer lock.Close()
	raw, err := lock.SyscallConn()
	if err != nil {
		return tls.Certificate{}, false, err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = lockFile(fd) }); err != nil || ferr != nil {
		return tls.Certificate{}, false, fmt.Errorf("%w: locking the state directory: %v", ErrTLSConfig, errors.Join(err, ferr))
	}
	certPath, keyPath := filepath.Join(dir, GeneratedCertFile), filepath.Join(dir, GeneratedKeyFile)
	if _, err := os.Stat(certPath); err == nil {
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return tls.Certificate{}, false, fmt.Errorf("%w: generated certificate in %s: %v", ErrTLSConfig, dir, err)
		}
		return cert, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, false, err
	}
	certPEM, keyPEM, err := selfSigned()
	if err != nil {
		return tls.Certificate{}, false, err
	}
	// The key first: a cert.pem is never there without its key.pem.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, false, err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	return cert, true, err
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// selfSigned makes a self-signed ECDSA P-256 certificate for sockmux,
// valid for ten years, usable as a server and a client certificate and as
// its own CA (so that a dialler may also trust it with CAFile: it names
// localhost, 127.0.0.1, ::1 and this host).
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sockmux"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// tlsDialer dials TCP and runs the TLS 1.3 handshake.
type tlsDialer struct {
	addr string
	cfg  *tls.Config
	net  netDialer
}

func newTLSDialer(hostport string, o *options, nd netDialer) (Dialer, error) {
	t := o.tls
	if t.CAFile == "" && t.Fingerprint == "" {
		return nil, fmt.Errorf("%w: dialling tls://%s needs a CA file or a certificate fingerprint to verify the server with", ErrTLSConfig, hostport)
	}
	cfg, err := clientTLSConfig(hostport, t)
	if err != nil {
		return nil, err
	}
	return &tlsDialer{addr: hostport, cfg: cfg, net: nd}, nil
}

// clientTLSConfig is the TLS 1.3 configuration of a dialler of hostport:
// the server verified with t.CAFile, pinned by t.Fingerprint (both, when
// both are given), or, with neither, against the system's roots; t's
// client certificate presented when it has one.
func clientTLSConfig(hostport string, t TLSConfig) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(hostport)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: host}
	switch {
	case t.CAFile != "":
		pool, err := loadPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	case t.Fingerprint != "":
		// Pinned: the fingerprint is the whole verification.
		cfg.InsecureSkipVerify = true
	}
	if t.Fingerprint != "" {
		want, err := normalizeFingerprint(t.Fingerprint)
		if err != nil {
			return nil, err
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: expected %s, the server presented no certificate", ErrFingerprint, want)
			}
			if got := Fingerprint(cs.PeerCertificates[0].Raw); got != want {
				return fmt.Errorf("%w: expected %s, the server presented %s", ErrFingerprint, want, got)
			}
			return nil
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := t.keyPair()
		if err != nil {
			return nil, err
		}
		// Presented even when the server names other authorities, so that
		// the server can log why it refuses it.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
	}
	return cfg, nil
}

func (d *tlsDialer) String() string { return "tls://" + d.addr + d.net.via() }

// Dial connects and completes the handshake: a certificate that fails
// verification is an error here (ErrFingerprint, ErrUnknownCA). A client
// certificate the server refuses shows only at the first Read, as TLS 1.3
// has the server check it after the client is done.
func (d *tlsDialer) Dial(ctx context.Context) (net.Conn, error) {
	raw, err := d.net.dial(ctx, d.addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, d.cfg)
	hctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", d.addr, classifyTLS(err))
	}
	return c, nil
}

// classifyTLS marks an unknown authority with ErrUnknownCA.
func classifyTLS(err error) error {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) && !errors.Is(err, ErrUnknownCA) {
		return fmt.Errorf("%w: %w", ErrUnknownCA, err)
	}
	var alert tls.AlertError
	if errors.As(err, &alert) && alert == alertProtocolVersion {
		return fmt.Errorf("%w (sockmux speaks TLS 1.3 only; a reverse proxy in front of the listener must offer it: nginx before 1.23.4 needs ssl_protocols TLSv1.2 TLSv1.3)", err)
	}
	return err
}

// alertProtocolVersion is TLS's protocol_version alert (RFC 8446 §6): the
// far end offers no version this side speaks.
const alertProtocolVersion tls.AlertError = 70

// tlsListener accepts TCP connections and runs each TLS handshake in a
// goroutine of its own, behind a pre-authentication gate (see
// upgradeListener).
type tlsListener = upgradeListener

// serverTLSConfig is a listener's TLS 1.3 configuration: its certificate
// (t's, or the generated one, logged with its fingerprint) and, with
// t.ClientCAFile, required client certificates.
func serverTLSConfig(t TLSConfig, o *options) (*tls.Config, error) {
	cert, path, generated, err := t.serverCertificate()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pool, err := loadPool(t.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	o.log.Info("tls certificate", "fingerprint", Fingerprint(cert.Certificate[0]), "path", path, "generated", generated)
	return cfg, nil
}

func listenTLS(hostport string, o *options) (net.Listener, error) {
	cfg, err := serverTLSConfig(o.tls, o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", hostport)
	if err != nil {
		return nil, err
	}
	return newTLSListener(ln, cfg, o), nil
}

// newTLSListener serves TLS on ln, which it owns from now on.
func newTLSListener(ln net.Listener, cfg *tls.Config, o *options) *tlsListener {
	return newUpgradeListener(ln, "tls", "tls handshake failed", func(ctx context.Context, raw net.Conn, e *preauth.Entry) (net.Conn, error) {
		c := tls.Server(e.Conn(), cfg)
		if err := c.HandshakeContext(ctx); err != nil {
			return nil, classifyTLS(err)
		}
		return c, nil
	}, o)
}
