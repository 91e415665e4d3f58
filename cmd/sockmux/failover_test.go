package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// failoverRows are the carrier rows whose listeners take a network address
// (not fifo:, comm: or exec:, which have no second address to move to).
func failoverRows(t *testing.T) []carrierRow {
	var out []carrierRow
	for _, row := range carrierRows(t) {
		if row.listen != nil && strings.Contains(strings.Join(row.listen(t, "LINK"), " "), "LINK") {
			out = append(out, row)
		}
	}
	return out
}

// TestConnectFailover: connect A B over every carrier kind with a network
// address (striped ones too): the link comes up on A and carries a
// transfer; A stops, so the link cannot be resumed; the link comes up on
// B, with every carrier, as the log says, and a new transfer works.
func TestConnectFailover(t *testing.T) {
	for _, row := range failoverRows(t) {
		t.Run(row.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			echo := testkit.Echo(t)
			linkA, linkB, fwd := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
			logA, stopA := runStoppable(t, append([]string{"listen", "--drain", "0s"}, row.listen(t, linkA)...)...)
			waitLog(t, logA, `msg="listening for links"`)
			logB := runBG(t, append([]string{"listen", "--drain", "0s"}, row.listen(t, linkB)...)...)
			waitLog(t, logB, `msg="listening for links"`)
			argsA, argsB := row.connect(t, linkA, logA.String()), row.connect(t, linkB, logB.String())
			args := append([]string{"connect", "--drain", "0s", "-L", fwd + ":" + echo}, argsA...)
			addrB := argsB[len(argsB)-1]
			clog := runBG(t, append(args, addrB)...)
			carriers := max(row.striped, 1)
			up := func(listen *syncBuffer, link, of string) {
				t.Helper()
				waitLine(t, clog, `msg="link up"`, "addr=", link, "failover="+`"`+of+`"`)
				if carriers > 1 {
					waitLine(t, clog, `msg="carrier joined the link"`, link, fmt.Sprintf("carriers=%d", carriers))
					waitLine(t, listen, `msg="carrier joined the link"`, fmt.Sprintf("carriers=%d", carriers))
				}
			}
			up(logA, linkA, "1 of 2")
			echoThroughFwd(t, fwd, 1)
			if strings.Contains(logB.String(), `msg="link up"`) {
				t.Fatalf("B has a link while A is in use:\n%s", logB.String())
			}
			stopA()
			waitLine(t, clog, "failing over to ", linkB, "(2 of 2)", "reason=", `"link lost"`)
			up(logB, linkB, "2 of 2")
			echoThroughFwd(t, fwd, 2)
			if n := strings.Count(logB.String(), `msg="link up"`); n != 1 {
				t.Fatalf("B saw %d links come up, want 1:\n%s", n, logB.String())
			}
		})
	}
}

// TestConnectFailoverAtStart: the first address refuses; connect dials
// the second at once, with no backoff before it.
func TestConnectFailoverAtStart(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	dead, link, fwd := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	waitLog(t, runBG(t, "listen", "--drain", "0s", link), `msg="listening for links"`)
	clog := runBG(t, "connect", "--drain", "0s", "-L", fwd+":"+echo, dead, link)
	waitLine(t, clog, `msg="link up"`, "addr=tcp://"+link, `failover="2 of 2"`)
	echoThroughFwd(t, fwd, 3)
	log := clog.String()
	waitLine(t, clog, `msg="link dial failed"`, dead)
	waitLine(t, clog, `msg="failing over to tcp://`+link+` (2 of 2)"`, "from=tcp://"+dead, "dial=now")
	if i := strings.Index(log, "link redial scheduled"); i >= 0 && i < strings.Index(log, `msg="link up"`) {
		t.Fatalf("a redial was scheduled before the link came up at the second address:\n%s", log)
	}
}

// TestRunFailover: a config file's connect list; status (the control
// socket's, sockmux status and the dashboard's JSON) names the address in
// use before and after the first one stops.
func TestRunFailover(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	linkA, linkB, fwd := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	logA, stopA := runStoppable(t, "listen", "--drain", "0s", linkA)
	waitLog(t, logA, `msg="listening for links"`)
	waitLog(t, runBG(t, "listen", "--drain", "0s", "ws://"+linkB+"/hub"), `msg="listening for links"`)
	addrB := "ws://" + linkB + "/hub"
	control, metrics := filepath.Join(t.TempDir(), "ctl.sock"), testkit.FreeAddr(t)
	d := startDaemon(t, fmt.Sprintf("control = %q\nmetrics = %q\n[[link]]\nname = \"out\"\nconnect = [\n  %q,\n  %q,\n]\nlocal = [%q]\ndrain = \"0s\"\n",
		control, metrics, linkA, addrB, fwd+":"+echo))
	inUse := func(want, of string) {
		t.Helper()
		waitLine(t, d.log, `msg="link up"`, "link=out", "addr=", want, `failover="`+of+`"`)
		l := linkOf(t, d.status(t), "out")
		if l.Addr != want || len(l.Addrs) != 2 || l.Addrs[0] != linkA || l.Addrs[1] != addrB {
			t.Fatalf("status: addr %q of %q, want %q of [%s %s]", l.Addr, l.Addrs, want, linkA, addrB)
		}
		if len(l.Status.Links) != 1 || !strings.Contains(l.Status.Links[0].Addr, want) || !l.Status.Links[0].Up {
			t.Fatalf("status of the link: %+v", l.Status.Links)
		}
		var out strings.Builder
		if code := run(t.Context(), []string{"status", "--control", control}, &out, io.Discard); code != 0 ||
			!strings.Contains(out.String(), "connect "+want+" ("+of+")") {
			t.Fatalf("sockmux status: exit %d, no %q:\n%s", code, "connect "+want+" ("+of+")", out.String())
		}
		// The dashboard's JSON is the same report.
		var dash struct{ Report report }
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+metrics+"/api/status")), &dash); err != nil || len(dash.Report.Links) != 1 ||
			dash.Report.Links[0].Addr != want || len(dash.Report.Links[0].Addrs) != 2 {
			t.Fatalf("the dashboard's status: %+v, %v", dash.Report.Links, err)
		}
		echoThroughFwd(t, fwd, 4)
	}
	inUse(linkA, "1 of 2")
	stopA()
	inUse(addrB, "2 of 2")
}

// TestFailoverBadAddress: a bad address anywhere in the list is an error
// at the start that names it, on the command line and in a config file
// (at the connect key); so is a TLS flag when no address runs TLS, and a
// connect key that is not an address or a list of them.
func TestFailoverBadAddress(t *testing.T) {
	const bad = "tpc://127.0.0.1:2"
	code, log := runFor(t, 10*time.Second, "connect", "127.0.0.1:1", bad)
	if code != 2 || !strings.Contains(log, `"`+bad+`"`) {
		t.Fatalf("connect with %s in its list: exit %d, want 2 naming it:\n%s", bad, code, log)
	}
	// A TLS flag needs an address in the list that runs TLS.
	code, log = runFor(t, 10*time.Second, "connect", "--tls-fingerprint", "ab", "127.0.0.1:1", "ws://127.0.0.1:2/x")
	if code != 2 || !strings.Contains(log, "--tls-fingerprint applies to tls://, wss:// and quic:// carriers only, and 127.0.0.1:1 is tcp://, ws://127.0.0.1:2/x is ws://") {
		t.Fatalf("a TLS flag with no TLS address: exit %d:\n%s", code, log)
	}
	path := writeConfig(t, fmt.Sprintf("[[link]]\nname = \"a\"\nconnect = [\"127.0.0.1:1\", %q]\n", bad))
	var errOut strings.Builder
	if code := run(t.Context(), []string{"check", "-c", path}, io.Discard, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), path+":3: connect: ") || !strings.Contains(errOut.String(), `"`+bad+`"`) {
		t.Fatalf("check: exit %d, want 2 naming %s:3, the key and %s: %s", code, path, bad, errOut.String())
	}
	for _, v := range []string{`[]`, `["127.0.0.1:1", 7]`, `7`} {
		path := writeConfig(t, "[[link]]\nconnect = "+v+"\n")
		errOut.Reset()
		if code := run(t.Context(), []string{"check", "-c", path}, io.Discard, &errOut); code != 2 ||
			!strings.Contains(errOut.String(), path+":2: connect: want an address string, or a list") {
			t.Errorf("connect = %s: exit %d: %s", v, code, errOut.String())
		}
	}
}

// TestCascadeFailover: with --via, the list is the final hop's: the relay
// cannot reach the first address, so the link comes up on the second at
// once, through the same relay.
func TestCascadeFailover(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	relay, dead, final, fwd := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	waitLog(t, runBG(t, "listen", "--drain", "0s", relay), `msg="listening for links"`)
	waitLog(t, runBG(t, "listen", "--drain", "0s", final), `msg="listening for links"`)
	clog := runBG(t, "connect", "--drain", "0s", "--via", relay, "-L", fwd+":"+echo, dead, final)
	waitLine(t, clog, `msg="link up"`, "addr=", final+" via "+relay, `failover="2 of 2"`)
	waitLine(t, clog, "failing over to "+final+" via "+relay+" (2 of 2)", "dial=now")
	echoThroughFwd(t, fwd, 5)
}

// TestReloadFailoverList: a changed connect list is named once as needing
// a restart; the same list again is no change.
func TestReloadFailoverList(t *testing.T) {
	load := func(connect string) *linkConf {
		t.Helper()
		cfg, err := loadConfig(writeConfig(t, "[[link]]\nname = \"out\"\nconnect = "+connect+"\n"), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.links[0]
	}
	for _, tc := range []struct{ was, will, want string }{
		{`"127.0.0.1:1"`, `["127.0.0.1:1", "ws://127.0.0.1:2/x"]`, `link "out": connect changed: needs a restart`},
		{`["127.0.0.1:1", "127.0.0.1:2"]`, `["127.0.0.1:2", "127.0.0.1:1"]`, `link "out": connect changed: needs a restart`},
		{`["127.0.0.1:1", "127.0.0.1:2"]`, `["127.0.0.1:1", "127.0.0.1:2"]`, ""},
	} {
		d := &daemon{log: slog.New(slog.DiscardHandler)}
		res := &reloadResult{}
		d.applyLink(&runningLink{conf: load(tc.was)}, load(tc.will), res)
		if got := strings.Join(res.NeedRestart, "; "); got != tc.want {
			t.Errorf("%s to %s: %q, want %q", tc.was, tc.will, got, tc.want)
		}
	}
}

// TestCheckFailoverList: sockmux check prints a connect list in order,
// and says how it is used.
func TestCheckFailoverList(t *testing.T) {
	path := writeConfig(t, "[[link]]\nname = \"out\"\nconnect = [\"127.0.0.1:1\", \"quic://127.0.0.1:2\"]\ntls-fingerprint = \""+strings.Repeat("ab", 32)+"\"\n")
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"check", "-c", path}, &out, &errOut); code != 0 {
		t.Fatalf("check exited %d: %s", code, errOut.String())
	}
	for _, want := range []string{`link "out": connect 127.0.0.1:1 quic://127.0.0.1:2`,
		"failover in turn: 127.0.0.1:1, quic://127.0.0.1:2 (after the last, the first again)", "tls: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}
