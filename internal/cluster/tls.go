package cluster

// The control plane's credentials: mutual TLS 1.3 for protoactor's gRPC
// remote, derived from the cluster's pre-shared key so that a deployment
// has one secret to copy (the key file), not a CA to run.
//
// From the key and the cluster's name, HKDF-SHA256 (RFC 5869, crypto/hkdf)
// derives a 32-byte Ed25519 seed; its key pair signs one self-signed CA
// certificate with fixed fields (serial, names, validity). Ed25519
// signatures are deterministic, so every member that holds the key makes
// the same certificate, byte for byte: each one presents it as its own,
// client and server, and trusts it alone as the root. A member of a
// cluster with another name, or with another key, derives another
// certificate and fails the handshake. Holding the key is being a member:
// there is no per-hub identity on the control plane (the hubs' sockmux
// links between them authenticate with a key derived from the same one,
// HubLinkKey).

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/sockmux/sockmux/engine"
)

// tlsServerName is the name in the derived certificate, which a dialling
// member asks for whatever address it dials.
const tlsServerName = "sockmux-cluster"

// tlsSalt separates this derivation from any other use of the key.
const tlsSalt = "sockmux cluster control plane TLS v1"

// credentials is the TLS configuration of a member's control plane.
type credentials struct {
	cert   tls.Certificate
	server *tls.Config
	client *tls.Config
}

// deriveCredentials makes the control plane's TLS configurations from the
// cluster's key and name.
func deriveCredentials(key []byte, name string) (*credentials, error) {
	if len(key) < engine.MinKeyLen {
		return nil, fmt.Errorf("%w: %d bytes, at least %d needed", ErrKey, len(key), engine.MinKeyLen)
	}
	seed, err := hkdf.Key(sha256.New, key, []byte(tlsSalt), "cluster "+name, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sockmux cluster " + name},
		DNSNames:              []string{tlsServerName},
		NotBefore:             time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	// Ed25519 signs without randomness, so no reader is needed: the same
	// inputs give the same certificate on every member.
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}
	return &credentials{
		cert: cert,
		server: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		},
		client: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			RootCAs:      pool,
			ServerName:   tlsServerName,
		},
	}, nil
}
