package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/net/proxy"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestProxyPipelined: bytes a client sends right after its request stay
// in the bufio.Reader; read one byte at a time from the client, the
// handshake reads exactly its request and no more.
func TestProxyPipelined(t *testing.T) {
	data := []byte("\x05\x01after the request\r\n\r\nGET / HTTP/1.1\r\n")
	for _, tc := range []struct {
		name   string
		auth   *ProxyAuth
		req    []byte
		target string
	}{
		{"socks5", nil, catBytes(socksGreeting(0), socksRequest(1, 3, socksDomain("example.com"), 443)), "example.com:443"},
		{"socks5 auth", testProxyAuth, catBytes(socksGreeting(0, 2), socksUserPass("alice", "s3cret"), socksRequest(1, 4, socksIPv6("::1"), 22)), "[::1]:22"},
		{"http", nil, []byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), "example.com:443"},
		{"http auth", testProxyAuth, []byte("CONNECT [::1]:22 HTTP/1.1\r\n" + proxyBasicAuthHeader("alice", "s3cret") + "\r\n"), "[::1]:22"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := catBytes(tc.req, data)
			for _, size := range []int{16, 4096} {
				r := runProxyHandshake(t, in, tc.auth, size)
				testkit.WantErr(t, "ProxyHandshake", r.err, nil)
				if r.req.Target != tc.target {
					t.Fatalf("target %q, want %q", r.req.Target, tc.target)
				}
				if !bytes.Equal(r.rest, data) {
					t.Fatalf("buffer %d: left %q, want %q", size, r.rest, data)
				}
			}
			cr := &proxyCountingReader{r: iotest.OneByteReader(bytes.NewReader(in))}
			br := bufio.NewReaderSize(cr, 16)
			if _, err := ProxyHandshake(br, io.Discard, tc.auth); err != nil {
				t.Fatal(err)
			}
			if cr.n != len(tc.req) || br.Buffered() != 0 {
				t.Fatalf("one byte at a time: read %d bytes (%d buffered), the request has %d", cr.n, br.Buffered(), len(tc.req))
			}
		})
	}
}

// proxyPipeDialer dials by starting serve on the far end of a net.Pipe.
type proxyPipeDialer struct {
	wg    *sync.WaitGroup
	serve func(net.Conn)
}

func (d proxyPipeDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d proxyPipeDialer) DialContext(_ context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer server.Close()
		d.serve(server)
	}()
	return client, nil
}

type proxyOutcome struct {
	req ProxyRequest
	err error
}

// TestProxySOCKS5Interop drives ProxyHandshake with golang.org/x/net/proxy's
// SOCKS5 client.
func TestProxySOCKS5Interop(t *testing.T) {
	for _, tc := range []struct {
		name       string
		server     *ProxyAuth
		client     *proxy.Auth
		addr, want string
		err        error
	}{
		{"domain", nil, nil, "www.example.com:443", "www.example.com:443", nil},
		{"ipv4", nil, nil, "192.0.2.1:80", "192.0.2.1:80", nil},
		{"ipv6", nil, nil, "[2001:db8::7]:8080", "[2001:db8::7]:8080", nil},
		{"auth", testProxyAuth, &proxy.Auth{User: "alice", Password: "s3cret"}, "example.com:22", "example.com:22", nil},
		{"client offers auth, none needed", nil, &proxy.Auth{User: "alice", Password: "s3cret"}, "example.com:22", "example.com:22", nil},
		{"wrong password", testProxyAuth, &proxy.Auth{User: "alice", Password: "nope"}, "example.com:22", "", ErrProxyAuth},
		{"no credentials", testProxyAuth, nil, "example.com:22", "", ErrProxyAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			defer wg.Wait()
			outcome := make(chan proxyOutcome, 1)
			serve := func(c net.Conn) {
				br := bufio.NewReader(c)
				req, err := ProxyHandshake(br, c, tc.server)
				outcome <- proxyOutcome{req, err}
				if err != nil {
					return
				}
				if _, err := c.Write(append(req.Reply(true, 0), "hello "+req.Target...)); err != nil {
					t.Errorf("proxy: %v", err)
					return
				}
				ping := make([]byte, 4)
				if _, err := io.ReadFull(br, ping); err != nil || string(ping) != "ping" {
					t.Errorf("proxy: read %q, %v; want ping", ping, err)
				}
			}
			d, err := proxy.SOCKS5("tcp", "proxy.invalid:1080", tc.client, proxyPipeDialer{&wg, serve})
			if err != nil {
				t.Fatal(err)
			}
			conn, err := d.Dial("tcp", tc.addr)
			o := <-outcome
			testkit.WantErr(t, "proxy side", o.err, tc.err)
			if tc.err != nil {
				if err == nil {
					conn.Close()
					t.Fatal("client dial succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			defer conn.Close()
			if !sameRequest(o.req, ProxyRequest{Kind: ProxySOCKS5, Target: tc.want}) {
				t.Fatalf("request %+v, want target %q", o.req, tc.want)
			}
			hello := make([]byte, len("hello "+tc.want))
			if _, err := io.ReadFull(conn, hello); err != nil || string(hello) != "hello "+tc.want {
				t.Fatalf("client read %q, %v", hello, err)
			}
			if _, err := conn.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestProxyHTTPInterop drives ProxyHandshake with net/http's Transport
// through an HTTP proxy: the tunnel it asks for carries TLS to an
// httptest server, relayed by the test once Reply(true, 0) is written.
func TestProxyHTTPInterop(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s%s", r.Host, r.URL.Path)
	}))
	defer ts.Close()
	for _, tc := range []struct {
		name     string
		server   *ProxyAuth
		user     *url.Userinfo
		url      string
		want     string
		err      error
		wantCode int
	}{
		{"name", nil, nil, "https://www.example.com:8443/x", "www.example.com:8443", nil, 200},
		{"default port", nil, nil, "https://example.com/y", "example.com:443", nil, 200},
		{"ipv6", nil, nil, "https://[::1]:9443/z", "[::1]:9443", nil, 200},
		{"auth", testProxyAuth, url.UserPassword("alice", "s3cret"), "https://example.com/", "example.com:443", nil, 200},
		{"wrong password", testProxyAuth, url.UserPassword("alice", "bad"), "https://example.com/", "", ErrProxyAuth, 407},
		{"no credentials", testProxyAuth, nil, "https://example.com/", "", ErrProxyAuth, 407},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			defer wg.Wait()
			outcome := make(chan proxyOutcome, 1)
			serve := func(c net.Conn) {
				br := bufio.NewReader(c)
				req, err := ProxyHandshake(br, c, tc.server)
				outcome <- proxyOutcome{req, err}
				if err != nil {
					return
				}
				up, err := net.Dial("tcp", ts.Listener.Addr().String())
				if err != nil {
					t.Errorf("proxy: %v", err)
					return
				}
				defer up.Close()
				if _, err := c.Write(req.Reply(true, 0)); err != nil {
					t.Errorf("proxy: %v", err)
					return
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					io.Copy(up, br) // br: what the client pipelined is in it
					up.Close()
				}()
				io.Copy(c, up)
				c.Close()
				<-done
			}
			tr := ts.Client().Transport.(*http.Transport).Clone()
			tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.invalid:3128", User: tc.user})
			tr.DialContext = proxyPipeDialer{&wg, serve}.DialContext
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(tc.url)
			o := <-outcome
			testkit.WantErr(t, "proxy side", o.err, tc.err)
			if tc.err != nil {
				if err == nil {
					resp.Body.Close()
					t.Fatal("client request succeeded")
				}
				if !strings.Contains(err.Error(), http.StatusText(tc.wantCode)) {
					t.Fatalf("client error %v, want one saying %q", err, http.StatusText(tc.wantCode))
				}
				return
			}
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !sameRequest(o.req, ProxyRequest{Kind: ProxyHTTPConnect, Target: tc.want}) {
				t.Fatalf("request %+v, want target %q", o.req, tc.want)
			}
			u, _ := url.Parse(tc.url)
			if want := "hello " + u.Host + u.Path; string(body) != want {
				t.Fatalf("body %q, want %q", body, want)
			}
		})
	}
}
