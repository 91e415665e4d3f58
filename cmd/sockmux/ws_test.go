package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestWSBehindNginx: listen ws:// behind a real nginx reverse proxy (the
// Upgrade and Connection headers passed on, unbuffered), connect ws:// to
// nginx: one carrier and a link striped over four each carry a
// checksummed 64 MiB both ways, every carrier an upgrade nginx logged. A
// request that is no upgrade reaches sockmux through nginx and gets its
// plain 404.
func TestWSBehindNginx(t *testing.T) {
	testkit.CheckLeaks(t)
	backend := testkit.FreeAddr(t)
	front, accessLog := testkit.Nginx(t, backend, "/tunnel")
	runBG(t, "listen", "--drain", "0s", "ws://"+backend+"/tunnel")
	waitListening(t, backend)

	resp, err := http.Get("http://" + front + "/tunnel")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || string(body) != "404 page not found\n" {
		t.Fatalf("a plain GET through nginx: %s %q, want sockmux's 404", resp.Status, body)
	}

	for _, carriers := range []int{1, 4} {
		t.Run(fmt.Sprintf("carriers=%d", carriers), func(t *testing.T) {
			echo := testkit.Echo(t)
			fwd := testkit.FreeAddr(t)
			clog := runBG(t, "connect", "--drain", "0s", "--carriers", fmt.Sprint(carriers), "-L", fwd+":"+echo, "ws://"+front+"/tunnel")
			waitLog(t, clog, `msg="link up"`)
			if carriers > 1 {
				waitLog(t, clog, fmt.Sprintf("carriers=%d", carriers))
			}
			c, err := net.Dial("tcp", fwd)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			testkit.EchoRoundTrip(t, c, uint64(carriers), 64<<20)
		})
	}
	// nginx logs an upgrade once it has ended: the connects have exited.
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, err := os.ReadFile(accessLog)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.Count(string(log), `"GET /tunnel HTTP/1.1" 101 `)
		if n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx logged %d upgrades, want the 5 carriers':\n%s", n, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
