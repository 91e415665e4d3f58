package carriers

import (
	"bytes"
	"context"
	"net"
	"testing"
)

// replayConn is a proxy that answers with reply whatever it is sent: the
// writes go nowhere, the reads take reply and then see its end.
type replayConn struct {
	net.Conn // nil: only Read, Write and Close are called
	r        *bytes.Reader
}

func (c *replayConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *replayConn) Close() error                { return nil }

// FuzzProxyReply: whatever an HTTP or SOCKS5 proxy answers, with or without
// credentials offered, the handshake returns (no panic); an HTTP answer is
// read up to its bound at most, and a tunnel called open has had its head
// read up to the blank line and not a byte further (what follows is the
// tunnel's).
func FuzzProxyReply(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\nTUNNEL",
		"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
		"HTTP/1.1 403 Forbidden\r\n\r\n",
		"HTTP/1.1 200\n\n",
		"\x05\x00\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50TUNNEL",
		"\x05\x02\x01\x00\x05\x00\x00\x03\x04host\x00\x50",
		"\x05\x00\x05\x05\x00\x04" + string(make([]byte, 18)),
		"\x05\xff",
		"",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, reply []byte, creds bool) {
		for _, scheme := range []string{"http", "socks5h"} {
			p := &Proxy{Scheme: scheme, Addr: "proxy.invalid:1"}
			if creds {
				p.User, p.Password = "user", "pass"
			}
			c := &replayConn{r: bytes.NewReader(reply)}
			var err error
			if scheme == "http" {
				err = p.connectHTTP(c, "target.invalid:80")
			} else {
				err = p.connectSOCKS5(context.Background(), c, "target.invalid", "80")
			}
			read := len(reply) - c.r.Len()
			if scheme == "http" && read > maxProxyHead {
				t.Fatalf("http: read %d bytes of the answer, past the %d bound", read, maxProxyHead)
			}
			if err == nil && scheme == "http" {
				head := reply[:read]
				if !bytes.HasSuffix(head, []byte("\r\n\r\n")) && !bytes.HasSuffix(head, []byte("\n\n")) {
					t.Fatalf("http: a tunnel open after %q, which is not a head up to its blank line", head)
				}
			}
		}
	})
}
