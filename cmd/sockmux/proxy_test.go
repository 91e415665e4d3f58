package main

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// clearProxyEnv unsets the proxy variables for the test (set and empty,
// one would mean no proxy, as in curl).
func clearProxyEnv(t *testing.T) {
	for _, v := range []string{"http_proxy", "https_proxy", "HTTPS_PROXY", "ws_proxy", "WS_PROXY", "wss_proxy", "WSS_PROXY",
		"all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"} {
		t.Setenv(v, "") // restores it after the test
		os.Unsetenv(v)
	}
}

// TestConnectThroughProxy: connect reaches its listener through a real
// HTTP proxy (tinyproxy, Basic auth) given with --proxy, and through a
// real SOCKS5 proxy (Dante, username/password) named by ALL_PROXY; the
// flag wins over the environment, --proxy none ignores it, NO_PROXY
// exempts a host; a proxy that refuses ends connect at once with its
// answer.
func TestConnectThroughProxy(t *testing.T) {
	clearProxyEnv(t)
	testkit.CheckLeaks(t)
	wsLink, tcpLink := testkit.FreeAddr(t), testkit.FreeAddr(t)
	runBG(t, "listen", "--drain", "0s", "ws://"+wsLink+"/hub")
	runBG(t, "listen", "--drain", "0s", tcpLink)
	waitListening(t, wsLink)
	waitListening(t, tcpLink)
	_, wsPort, _ := net.SplitHostPort(wsLink)
	_, tcpPort, _ := net.SplitHostPort(tcpLink)
	tiny := testkit.Tinyproxy(t, "sockmux", "s3cr3t", wsPort, tcpPort)
	dante := testkit.Danted(t)
	socks := "socks5h://" + testkit.DanteUser + ":" + testkit.DantePassword + "@" + dante

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		peer string // what the link-up line names
	}{
		{"--proxy http, ws://", nil, []string{"--proxy", "http://sockmux:s3cr3t@" + tiny, "ws://" + wsLink + "/hub"},
			`peer="ws://` + wsLink + `/hub via http://sockmux:***@` + tiny + `"`},
		{"ALL_PROXY socks5, tcp://", map[string]string{"ALL_PROXY": socks}, []string{tcpLink},
			`peer="tcp://` + tcpLink + ` via socks5h://` + testkit.DanteUser + `:***@` + dante + `"`},
		{"HTTPS_PROXY, striped", map[string]string{"HTTPS_PROXY": "http://sockmux:s3cr3t@" + tiny}, []string{"--carriers", "2", tcpLink},
			`peer="tcp://` + tcpLink + ` via http://sockmux:***@` + tiny + `"`},
		{"the flag wins", map[string]string{"ALL_PROXY": "http://127.0.0.1:1"}, []string{"--proxy", socks, "ws://" + wsLink + "/hub"},
			`peer="ws://` + wsLink + `/hub via socks5h://`},
		{"--proxy none", map[string]string{"ALL_PROXY": "http://127.0.0.1:1"}, []string{"--proxy", "none", tcpLink},
			`peer=tcp://` + tcpLink + ` `},
		{"NO_PROXY", map[string]string{"ALL_PROXY": "http://127.0.0.1:1", "NO_PROXY": "localhost,127.0.0.0/8"}, []string{tcpLink},
			`peer=tcp://` + tcpLink + ` `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			echo := testkit.Echo(t)
			fwd := testkit.FreeAddr(t)
			clog := runBG(t, append([]string{"connect", "--drain", "0s", "-L", fwd + ":" + echo}, tc.args...)...)
			waitLog(t, clog, `msg="link up" `+tc.peer)
			if strings.Contains(strings.Join(tc.args, " "), "--carriers 2") {
				waitLog(t, clog, "carriers=2")
			}
			c, err := net.Dial("tcp", fwd)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			testkit.EchoRoundTrip(t, c, 5, 4<<20)
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong password", []string{"--proxy", "http://sockmux:wrong@" + tiny, tcpLink},
			`refused the credentials of \"sockmux\": it answered \"HTTP/1.0 401 Unauthorized\"`},
		{"no credentials", []string{"--proxy", "socks5://" + dante, "ws://" + wsLink + "/hub"}, "wants credentials"},
		{"a port the proxy refuses", []string{"--proxy", "http://sockmux:s3cr3t@" + tiny, testkit.FreeAddr(t)},
			`answered \"HTTP/1.1 403 Access violation\"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, log := runFor(t, 30*time.Second, append([]string{"connect", "--drain", "0s", "--connect-timeout", "3s"}, tc.args...)...)
			if code != 1 || !strings.Contains(log, tc.want) {
				t.Fatalf("exit %d, log:\n%s\nwant exit 1 saying %s", code, log, tc.want)
			}
		})
	}
}

// TestBadProxy: a --proxy or a proxy variable that does not parse exits 2
// naming it.
func TestBadProxy(t *testing.T) {
	clearProxyEnv(t)
	code, log := runFor(t, 10*time.Second, "connect", "--proxy", "ftp://h:1", "127.0.0.1:1")
	if code != 2 || !strings.Contains(log, `unsupported proxy scheme "ftp"`) || !strings.Contains(log, "--proxy") {
		t.Fatalf("--proxy ftp://: exit %d, %s", code, log)
	}
	t.Setenv("HTTPS_PROXY", "http://u:hunter2@h:99999")
	code, log = runFor(t, 10*time.Second, "connect", "127.0.0.1:1")
	if code != 2 || !strings.Contains(log, "HTTPS_PROXY") || !strings.Contains(log, "bad port") || strings.Contains(log, "hunter2") {
		t.Fatalf("a bad HTTPS_PROXY: exit %d, %s", code, log)
	}
}
