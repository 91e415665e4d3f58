package cluster

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
)

func TestCredentialsAreDeterministic(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a, err := deriveCredentials(key, "prod")
	if err != nil {
		t.Fatal(err)
	}
	b, err := deriveCredentials(key, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.cert.Certificate[0], b.cert.Certificate[0]) {
		t.Error("the same key and name made two different certificates")
	}
}

// handshake runs a TLS handshake between a client and a server config
// over loopback TCP (a net.Pipe has no buffer, and both sides writing at
// once, an alert against a flight, would block) and returns the client's
// error and the server's.
func handshake(t *testing.T, client, server *tls.Config) (error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer s.Close()
		ts := tls.Server(s, server)
		err = ts.Handshake()
		if err == nil {
			// In TLS 1.3 the server checks the client's certificate
			// after the client's handshake is done: a read shows it.
			_, err = ts.Read(make([]byte, 1))
		}
		srvErr <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, client)
	cErr := tc.Handshake()
	if cErr == nil {
		_, cErr = tc.Write([]byte{1})
	}
	return cErr, <-srvErr
}

func TestCredentialsMutualTLS(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	other := bytes.Repeat([]byte{8}, 32)
	mk := func(key []byte, name string) *credentials {
		c, err := deriveCredentials(key, name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	prod := mk(key, "prod")
	for _, tc := range []struct {
		name   string
		client *credentials
		ok     bool
	}{
		{"same key and name", mk(key, "prod"), true},
		{"another key", mk(other, "prod"), false},
		{"another cluster name", mk(key, "staging"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cErr, sErr := handshake(t, tc.client.client, prod.server)
			if tc.ok && (cErr != nil || sErr != nil) {
				t.Fatalf("handshake failed: client %v, server %v", cErr, sErr)
			}
			if !tc.ok && cErr == nil && sErr == nil {
				t.Fatal("handshake succeeded with credentials of another cluster")
			}
		})
	}
	// A client with no certificate is refused by the server.
	bare := prod.client.Clone()
	bare.Certificates = nil
	if _, sErr := handshake(t, bare, prod.server); sErr == nil {
		t.Error("the server accepted a client without a certificate")
	}
}
