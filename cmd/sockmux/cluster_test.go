package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// TestListenJoinsCluster: listen --cluster starts the hub's membership
// (on loopback, where no key is needed) and leaves at shutdown; run with
// a [cluster] table does the same.
func TestListenJoinsCluster(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"listen", func(t *testing.T) []string {
			return []string{"listen", "--cluster", "c", "--cluster-bind", "127.0.0.1:0", "127.0.0.1:0"}
		}},
		{"run", func(t *testing.T) []string {
			path := writeConfig(t, fmt.Sprintf("control = %q\n[[link]]\nlisten = \"127.0.0.1:0\"\n[cluster]\nname = \"c\"\nbind = \"127.0.0.1:0\"\n", t.TempDir()+"/ctl.sock"))
			return []string{"run", "-c", path}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var log syncBuffer
			code := make(chan int, 1)
			go func() { code <- run(ctx, tc.args(t), io.Discard, &log) }()
			waitLog(t, &log, `msg="cluster member started" cluster=c`)
			cancel()
			if c := <-code; c != 0 {
				t.Fatalf("exit %d:\n%s", c, log.String())
			}
			if !strings.Contains(log.String(), `msg="cluster member stopped"`) {
				t.Errorf("the member did not stop:\n%s", log.String())
			}
		})
	}
}

func TestBoundLink(t *testing.T) {
	got := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41000}
	for _, tc := range []struct{ link, want string }{
		{"127.0.0.1:0", "127.0.0.1:41000"},
		{"tls://127.0.0.1:0", "tls://127.0.0.1:41000"},
		{"127.0.0.1:7000", "127.0.0.1:7000"},
	} {
		if out := boundLink(tc.link, got); out != tc.want {
			t.Errorf("boundLink(%q) = %q, want %q", tc.link, out, tc.want)
		}
	}
}

func TestLinkAddr(t *testing.T) {
	for _, tc := range []struct{ listen, via, want string }{
		{"10.0.0.1:7000", "", "10.0.0.1:7000"},
		{"0.0.0.0:7000", "10.0.0.2:7946", "10.0.0.2:7000"},
		{"tls://0.0.0.0:7443", "hub-a.example:7946", "tls://hub-a.example:7443"},
		{":7000", "[fd00::1]:7946", "[fd00::1]:7000"},
		{"0.0.0.0:7000", "0.0.0.0:7946", ""},
		{"fifo:/tmp/a,/tmp/b", "10.0.0.2:7946", ""},
	} {
		got, err := linkAddr(tc.listen, tc.via)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("linkAddr(%q, %q) = %q, %v; want %q", tc.listen, tc.via, got, err, tc.want)
		}
	}
}
