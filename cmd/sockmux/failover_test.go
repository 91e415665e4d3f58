package main

import (
	"fmt"
	"io"
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
// socket's, which the dashboard shows too, and sockmux status) names the
// address in use before and after the first one stops.
func TestRunFailover(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	linkA, linkB, fwd := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	logA, stopA := runStoppable(t, "listen", "--drain", "0s", linkA)
	waitLog(t, logA, `msg="listening for links"`)
	waitLog(t, runBG(t, "listen", "--drain", "0s", "ws://"+linkB+"/hub"), `msg="listening for links"`)
	addrB := "ws://" + linkB + "/hub"
	control := filepath.Join(t.TempDir(), "ctl.sock")
	d := startDaemon(t, fmt.Sprintf("control = %q\n[[link]]\nname = \"out\"\nconnect = [\n  %q,\n  %q,\n]\nlocal = [%q]\ndrain = \"0s\"\n",
		control, linkA, addrB, fwd+":"+echo))
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
		echoThroughFwd(t, fwd, 4)
	}
	inUse(linkA, "1 of 2")
	stopA()
	inUse(addrB, "2 of 2")
}

// TestFailoverBadAddress: a bad address anywhere in the list is an error
// at the start that names it, on the command line and in a config file
// (at the connect key).
func TestFailoverBadAddress(t *testing.T) {
	const bad = "tpc://127.0.0.1:2"
	code, log := runFor(t, 10*time.Second, "connect", "127.0.0.1:1", bad)
	if code != 2 || !strings.Contains(log, `"`+bad+`"`) {
		t.Fatalf("connect with %s in its list: exit %d, want 2 naming it:\n%s", bad, code, log)
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
