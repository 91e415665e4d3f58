package carriers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority of a test, written to files.
type testCA struct {
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	CAFile string
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{dir: dir, cert: cert, key: key, CAFile: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, ca.CAFile, "CERTIFICATE", der)
	return ca
}

// issue signs a certificate for 127.0.0.1 usable by a server and a client,
// and returns its files.
func (ca *testCA) issue(t testing.TB, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// colons writes a fingerprint the way other tools print it: upper case,
// pairs of digits between colons.
func colons(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(fp[i : i+2]))
	}
	return b.String()
}

// tlsFixtures are the certificates the TLS tests of every TLS carrier
// use: a CA with a server and a client, a stranger from another CA, and a
// generated server certificate with its fingerprint.
type tlsFixtures struct {
	ca, other                                        *testCA
	clientCert, clientKey, strangerCert, strangerKey string
	generated, caServer, mutual                      TLSConfig
	genFP                                            string
}

func newTLSFixtures(t testing.TB) tlsFixtures {
	t.Helper()
	ca := newTestCA(t, "good")
	other := newTestCA(t, "other")
	serverCert, serverKey := ca.issue(t, "server")
	fx := tlsFixtures{ca: ca, other: other, generated: TLSConfig{StateDir: t.TempDir()},
		caServer: TLSConfig{CertFile: serverCert, KeyFile: serverKey},
		mutual:   TLSConfig{CertFile: serverCert, KeyFile: serverKey, ClientCAFile: ca.CAFile}}
	fx.clientCert, fx.clientKey = ca.issue(t, "client")
	fx.strangerCert, fx.strangerKey = other.issue(t, "stranger")
	var err error
	if fx.genFP, err = fx.generated.ServerFingerprint(); err != nil {
		t.Fatal(err)
	}
	return fx
}

// TestTLS: server verification, by pinned fingerprint or by CA, and
// client certificates; failures name their cause and match the sentinels.
func TestTLS(t *testing.T) {
	fx := newTLSFixtures(t)
	ca, generated, genFP, caServer, mutual := fx.ca, fx.generated, fx.genFP, fx.caServer, fx.mutual
	clientCert, clientKey, strangerCert, strangerKey := fx.clientCert, fx.clientKey, fx.strangerCert, fx.strangerKey
	const wrongFP = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

	cases := []struct {
		name         string
		server, dial TLSConfig
		dialErr      error  // the Dial fails with this
		says         string // and its message says this
		readErr      string // the Dial succeeds, the first Read fails saying this
		logs         string // and the listener logs the failure saying this
	}{
		{name: "pinned", server: generated, dial: TLSConfig{Fingerprint: genFP}},
		{name: "pinned, colons and upper case", server: generated, dial: TLSConfig{Fingerprint: colons(genFP)}},
		{name: "generated, trusted as its own CA", server: generated, dial: TLSConfig{CAFile: filepath.Join(generated.StateDir, GeneratedCertFile)}},
		{name: "wrong fingerprint", server: generated, dial: TLSConfig{Fingerprint: wrongFP},
			dialErr: ErrFingerprint, says: "expected " + wrongFP + ", the server presented " + genFP},
		{name: "CA", server: caServer, dial: TLSConfig{CAFile: ca.CAFile}},
		{name: "CA and pin", server: caServer, dial: TLSConfig{CAFile: ca.CAFile, Fingerprint: certFileFingerprint(t, caServer.CertFile)}},
		{name: "unknown CA", server: caServer, dial: TLSConfig{CAFile: fx.other.CAFile},
			dialErr: ErrUnknownCA, says: "unknown authority"},
		{name: "self-signed, CA expected", server: generated, dial: TLSConfig{CAFile: ca.CAFile},
			dialErr: ErrUnknownCA, says: "unknown authority"},
		{name: "client certificate", server: mutual, dial: TLSConfig{CAFile: ca.CAFile, CertFile: clientCert, KeyFile: clientKey}},
		{name: "no client certificate", server: mutual, dial: TLSConfig{CAFile: ca.CAFile},
			readErr: "certificate required", logs: "didn't provide a certificate"},
		{name: "client certificate of an unknown CA", server: mutual, dial: TLSConfig{CAFile: ca.CAFile, CertFile: strangerCert, KeyFile: strangerKey},
			readErr: "unknown certificate authority", logs: "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(16)
			ln := listen(t, "tls://127.0.0.1:0", WithTLS(tc.server), WithLogger(rec.logger()))
			d := mustDialer(t, "tls://"+ln.Addr().String(), WithTLS(tc.dial))
			ach := acceptAsync(t, ln)
			c, err := d.Dial(context.Background())
			if tc.dialErr != nil {
				if c != nil {
					c.Close()
				}
				if !errors.Is(err, tc.dialErr) || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("Dial: %v; want %v saying %q", err, tc.dialErr, tc.says)
				}
				if errors.Is(tc.dialErr, ErrUnknownCA) {
					var ua x509.UnknownAuthorityError
					if !errors.As(err, &ua) {
						t.Fatalf("Dial: %v does not wrap an x509.UnknownAuthorityError", err)
					}
				}
				ln.Close()
				if a := <-ach; a.err == nil {
					a.c.Close()
					t.Fatal("the listener accepted a failed handshake")
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			t.Cleanup(func() { c.Close() })
			if tc.readErr != "" {
				if _, err := c.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), tc.readErr) {
					t.Fatalf("Read: %v; want an error saying %q", err, tc.readErr)
				}
				r := waitRecord(t, rec, "tls handshake failed")
				if r.Level != slog.LevelWarn || attr(r, "peer") == "" || !strings.Contains(attr(r, "err"), tc.logs) {
					t.Fatalf("logged %v %q peer=%q err=%q; want warn saying %q", r.Level, r.Message, attr(r, "peer"), attr(r, "err"), tc.logs)
				}
				ln.Close()
				if a := <-ach; a.err == nil {
					a.c.Close()
					t.Fatal("the listener accepted a refused client")
				}
				return
			}
			a := <-ach
			if a.err != nil {
				t.Fatal(a.err)
			}
			t.Cleanup(func() { a.c.Close() })
			roundTrip(t, c, a.c, "over tls")
		})
	}
}

// certFileFingerprint is the fingerprint of the first certificate in a
// PEM file.
func certFileFingerprint(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	return Fingerprint(b.Bytes)
}

// waitRecord waits for the first record logged with msg.
func waitRecord(t testing.TB, rec *recorder, msg string) slog.Record {
	t.Helper()
	for r := range rec.notify {
		if r.Message == msg {
			return r
		}
	}
	panic("unreachable")
}

// TestTLSGeneratedOnce: a listener without a certificate makes one, keeps
// it (key 0600, directory 0700) and logs its fingerprint; the next start
// on the same state directory uses the same one.
func TestTLSGeneratedOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	var fps []string
	for range 2 {
		rec := newRecorder(4)
		ln := listen(t, "tls://127.0.0.1:0", WithTLS(TLSConfig{StateDir: dir}), WithLogger(rec.logger()))
		r := waitRecord(t, rec, "tls certificate")
		if r.Level != slog.LevelInfo || attr(r, "path") != filepath.Join(dir, GeneratedCertFile) {
			t.Fatalf("logged %v %q path=%q", r.Level, r.Message, attr(r, "path"))
		}
		fps = append(fps, attr(r, "fingerprint"))
		ln.Close()
	}
	if fps[0] != fps[1] || len(fps[0]) != 64 {
		t.Fatalf("fingerprints %q, want the same one twice", fps)
	}
	want, err := TLSConfig{StateDir: dir}.ServerFingerprint()
	if err != nil || want != fps[0] {
		t.Fatalf("ServerFingerprint = %q, %v; want %q", want, err, fps[0])
	}
	if fp := certFileFingerprint(t, filepath.Join(dir, GeneratedCertFile)); fp != fps[0] {
		t.Fatalf("cert.pem has fingerprint %s, logged %s", fp, fps[0])
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, GeneratedKeyFile): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
}

// TestTLSConfigErrors: a configuration that cannot work fails at
// NewDialer or Listen, saying why.
func TestTLSConfigErrors(t *testing.T) {
	ca := newTestCA(t, "ca")
	cert, _ := ca.issue(t, "server")
	cases := []struct {
		name   string
		listen bool
		cfg    TLSConfig
		says   string
	}{
		{"dial without CA or fingerprint", false, TLSConfig{}, "needs a CA file or a certificate fingerprint"},
		{"short fingerprint", false, TLSConfig{Fingerprint: "abcd"}, "not a SHA-256"},
		{"fingerprint not hex", false, TLSConfig{Fingerprint: strings.Repeat("zz", 32)}, "not a SHA-256"},
		{"missing CA file", false, TLSConfig{CAFile: "/nonexistent/ca.pem"}, "no such file"},
		{"CA file without PEM", false, TLSConfig{CAFile: os.DevNull}, "no PEM certificate"},
		{"client certificate without key", false, TLSConfig{CAFile: ca.CAFile, CertFile: cert}, "both a cert file and a key file"},
		{"listen certificate without key", true, TLSConfig{CertFile: cert}, "both a cert file and a key file"},
		{"listen with a missing client CA", true, TLSConfig{StateDir: t.TempDir(), ClientCAFile: "/nonexistent/ca.pem"}, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.listen {
				var ln net.Listener
				if ln, err = Listen("tls://127.0.0.1:0", WithTLS(tc.cfg), WithLogger(nil)); err == nil {
					ln.Close()
				}
			} else {
				_, err = NewDialer("tls://127.0.0.1:1", WithTLS(tc.cfg))
			}
			if !errors.Is(err, ErrTLSConfig) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err %v; want ErrTLSConfig saying %q", err, tc.says)
			}
		})
	}
}

// TestTLSSlowClient: a client that connects and says nothing does not
// hold up the handshake of the next one.
func TestTLSSlowClient(t *testing.T) {
	cfg := TLSConfig{StateDir: t.TempDir()}
	fp, err := cfg.ServerFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "tls://127.0.0.1:0", WithTLS(cfg), WithLogger(nil))
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	c, s := dialPair(t, ln, mustDialer(t, "tls://"+ln.Addr().String(), WithTLS(TLSConfig{Fingerprint: fp})))
	roundTrip(t, c, s, "past a silent client")
	// Closing the listener ends the silent client's pending handshake.
	ln.Close()
	if _, err := io.ReadAll(silent); err != nil {
		t.Fatalf("the silent client: %v", err)
	}
}

// TestFingerprintForms: a pinned fingerprint may be written with colons,
// in either case, with a sha256: prefix.
func TestFingerprintForms(t *testing.T) {
	const fp = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, in := range []string{fp, strings.ToUpper(fp), colons(fp), "SHA256:" + colons(fp), " " + fp + "\n"} {
		got, err := normalizeFingerprint(in)
		if err != nil || got != fp {
			t.Errorf("normalizeFingerprint(%q) = %q, %v", in, got, err)
		}
	}
}

// TestClassifyTLSVersion: a far end that offers no TLS 1.3 (a stock
// nginx 1.22 in front of a wss:// listener) gets a dial error that says
// what to change, and still unwraps to the alert.
func TestClassifyTLSVersion(t *testing.T) {
	err := classifyTLS(fmt.Errorf("remote error: %w", alertProtocolVersion))
	if !errors.Is(err, alertProtocolVersion) || !strings.Contains(err.Error(), "TLS 1.3 only") {
		t.Fatalf("classifyTLS: %v", err)
	}
	other := fmt.Errorf("remote error: %w", tls.AlertError(40))
	if got := classifyTLS(other); got != other {
		t.Fatalf("another alert changed: %v", got)
	}
}
