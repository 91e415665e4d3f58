//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestClusterRunReload: under `sockmux run`, a reload that removes the
// listen link the bridge and the other hubs' links were at moves them to
// the next listen link (the other hub's bind still works here, and this
// hub stays a member), and a listen link a reload adds registers its
// edges' binds (the other hub binds them). Hub A is a `sockmux run`
// process reloaded through its control socket, hub B a listen process;
// the edges run in this process.
func TestClusterRunReload(t *testing.T) {
	testkit.CheckLeaks(t) // the edges'; the hubs are processes
	key := keyFile(t, "the hubs' and edges' link key, 32 bytes or more")
	clusterKey := keyFile(t, "the control plane's cluster key, 32 bytes or more")
	_, p, _ := net.SplitHostPort(testkit.FreeAddr(t)) // bound by B's edge, bridged at A
	_, q, _ := net.SplitHostPort(testkit.FreeAddr(t)) // bound by A's added link's edge, bridged at B
	port := func() string { _, x, _ := net.SplitHostPort(testkit.FreeAddr(t)); return x }
	hostA, hostB := "127.0.0.21", "127.0.0.22"
	controlA := net.JoinHostPort(hostA, port())
	first, second, third := net.JoinHostPort(hostA, port()), net.JoinHostPort(hostA, port()), net.JoinHostPort(hostA, port())

	ctl := filepath.Join(t.TempDir(), "ctl.sock")
	conf := func(links ...[2]string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "control = %q\n", ctl)
		for _, l := range links {
			fmt.Fprintf(&b, "[[link]]\nname = %q\nlisten = %q\nkey-file = %q\nremote-bind-addr = %q\nallow-listen = [\"*:%s\", \"*:%s\"]\n",
				l[0], l[1], key, hostA, p, q)
		}
		fmt.Fprintf(&b, "[cluster]\nname = \"t\"\nbind = %q\nkey = %q\n", controlA, clusterKey)
		return b.String()
	}
	path := writeConfig(t, conf([2]string{"first", first}, [2]string{"second", second}))
	a, b, linkB, controlB := startReloadHubs(t, path, key, clusterKey, hostB, controlA, p, q)
	echo := testkit.Echo(t)

	// B's edge binds *:p; A bridges it, at its first link's node.
	edgeB := runBG(t, "connect", "--drain", "0s", "--resume-window", "0", "--key-file", key, "-R", "*:"+p+":"+echo, linkB)
	waitLog(t, edgeB, `msg="reverse forward listening"`)
	a.waitLine(t, "A bridging B's bind", `msg="cluster: bridging a bind of another hub"`, "hub="+controlB)
	echoAt(t, net.JoinHostPort(hostA, p))

	// The first link goes: the bridge and the door move to the second.
	from := len(a.log.String())
	reload(t, path, ctl, conf([2]string{"second", second}))
	a.waitLine(t, "the reload moving the bridge", `reload: cluster: bridging at link \"second\"`)
	waitLineFrom(t, &a.log, from, `msg="cluster: bridging a bind of another hub"`, "hub="+controlB)
	echoAt(t, net.JoinHostPort(hostA, p))

	// A third link comes: its edge's bind is A's entry, which B bridges.
	reload(t, path, ctl, conf([2]string{"second", second}, [2]string{"third", third}))
	a.waitLine(t, "the reload adding a link", `reload: link \"third\" added`)
	edgeA := runBG(t, "connect", "--drain", "0s", "--resume-window", "0", "--key-file", key, "-R", "*:"+q+":"+echo, third)
	waitLog(t, edgeA, `msg="reverse forward listening"`)
	b.waitLine(t, "B bridging A's added bind", `msg="cluster: bridging a bind of another hub"`, "hub="+controlA, ":"+q)
	echoAt(t, net.JoinHostPort(hostB, q))
	// A was a member all along: B never saw it leave.
	if _, left := findLine(b.log.String(), `msg="cluster: hub left"`, "hub="+controlA); left {
		t.Errorf("hub B saw hub A leave across the reloads")
	}
}

// reload writes text as the config file at path and has the daemon
// whose control socket is ctl reload it.
func reload(t *testing.T, path, ctl, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := controlCall(ctl, "reload"); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// TestClusterRunReloadBridgeSettings: under `sockmux run`, the bridge
// follows the settings of the link it is at across reloads: moved to the
// next listen link, it bridges what that link's allow-listen allows (and
// not what the removed link's did); and a reload that changes that
// link's allow-listen changes what it bridges, without moving it. Hub B
// holds an edge's -R *:p and *:q; hub A's links allow one of them each.
func TestClusterRunReloadBridgeSettings(t *testing.T) {
	testkit.CheckLeaks(t) // the edge's; the hubs are processes
	key := keyFile(t, "the hubs' and edges' link key, 32 bytes or more")
	clusterKey := keyFile(t, "the control plane's cluster key, 32 bytes or more")
	port := func() string { _, x, _ := net.SplitHostPort(testkit.FreeAddr(t)); return x }
	p, q := port(), port()
	hostA, hostB := "127.0.0.23", "127.0.0.24"
	controlA := net.JoinHostPort(hostA, port())
	first, second := net.JoinHostPort(hostA, port()), net.JoinHostPort(hostA, port())
	atP, atQ := net.JoinHostPort(hostA, p), net.JoinHostPort(hostA, q)

	ctl := filepath.Join(t.TempDir(), "ctl.sock")
	type link struct{ name, addr, allow string }
	conf := func(links ...link) string {
		var b strings.Builder
		fmt.Fprintf(&b, "control = %q\n", ctl)
		for _, l := range links {
			fmt.Fprintf(&b, "[[link]]\nname = %q\nlisten = %q\nkey-file = %q\nremote-bind-addr = %q\nallow-listen = [\"*:%s\"]\n",
				l.name, l.addr, key, hostA, l.allow)
		}
		fmt.Fprintf(&b, "[cluster]\nname = \"t\"\nbind = %q\nkey = %q\n", controlA, clusterKey)
		return b.String()
	}
	path := writeConfig(t, conf(link{"first", first, p}, link{"second", second, q}))
	a, _, linkB, controlB := startReloadHubs(t, path, key, clusterKey, hostB, controlA, p, q)
	echo := testkit.Echo(t)
	edge := runBG(t, "connect", "--drain", "0s", "--resume-window", "0", "--key-file", key,
		"-R", "*:"+p+":"+echo, "-R", "*:"+q+":"+echo, linkB)
	for _, x := range []string{p, q} {
		waitLine(t, edge, `msg="reverse forward listening"`, "remote="+net.JoinHostPort(hostB, x)+" ")
	}

	// At the first link, allowing p: p is bridged, q is not.
	bridging := func(from int, at string) {
		t.Helper()
		waitLineFrom(t, &a.log, from, `msg="cluster: bridging a bind of another hub"`, "hub="+controlB, "listen="+at)
	}
	refusing := func(from int, at string) {
		t.Helper()
		waitLineFrom(t, &a.log, from, `msg="cluster: a bind of another hub is not bridged here: not allowed by --allow-listen"`, "listen="+at)
	}
	bridging(0, atP)
	refusing(0, atQ)
	echoAt(t, atP)
	refused(t, atQ)

	// The first link goes: the bridge moves to the second, with its
	// allow-listen: q is bridged, p is not.
	from := len(a.log.String())
	reload(t, path, ctl, conf(link{"second", second, q}))
	waitLineFrom(t, &a.log, from, `reload: cluster: bridging at link \"second\"`)
	bridging(from, atQ)
	refusing(from, atP)
	echoAt(t, atQ)
	refused(t, atP)

	// The second link's allow-listen changes: the bridge, still there,
	// bridges p and no longer q.
	from = len(a.log.String())
	reload(t, path, ctl, conf(link{"second", second, p}))
	bridging(from, atP)
	waitLineFrom(t, &a.log, from, `msg="cluster: bind no longer bridged"`, "hub="+controlB, "listen="+atQ)
	waitLineFrom(t, &a.log, from, `reload: cluster: the bridge takes link \"second\"'s new settings`)
	echoAt(t, atP)
	refused(t, atQ)
}

// refused fails the test unless addr refuses a connection.
func refused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("%s takes connections, want it refused", addr)
	}
}

// startReloadHubs starts the reload tests' two hubs: A, a `sockmux run`
// of the config at path (its control plane at controlA), and B, a listen
// process on hostB that allows binds of ports p and q and joins A's
// cluster. It returns both, with B's link and control-plane addresses,
// once B has joined A; each hub's log is shown if the test fails.
func startReloadHubs(t *testing.T, path, key, clusterKey, hostB, controlA, p, q string) (a, b *child, linkB, controlB string) {
	t.Helper()
	a = startChild(t, nil, "run", "-c", path)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub A logged:\n%s", a.log.String())
		}
	})
	a.waitLine(t, "hub A's control socket", `msg="control socket"`)

	port := func() string { _, x, _ := net.SplitHostPort(testkit.FreeAddr(t)); return x }
	linkB, controlB = net.JoinHostPort(hostB, port()), net.JoinHostPort(hostB, port())
	b = startChild(t, nil, "listen", "--drain", "0s", "--key-file", key, "--remote-bind-addr", hostB,
		"--allow-listen", "*:"+p, "--allow-listen", "*:"+q, "--cluster", "t", "--cluster-key", clusterKey,
		"--cluster-bind", controlB, "--cluster-seed", controlA, linkB)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub B logged:\n%s", b.log.String())
		}
	})
	b.waitLine(t, "hub B joined by A", `msg="cluster: hub joined"`, "hub="+controlA)
	return a, b, linkB, controlB
}
