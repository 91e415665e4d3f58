//go:build linux

package main

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestClusterHubRejoins: a hub stopped (SIGSTOP) until the other hub
// counts it out, then continued (SIGCONT), rejoins the cluster by itself,
// with no restart: the other hub counts it again and bridges the bind its
// edge holds there again, and the bind answers through the other hub.
//
// Opt-in (SOCKMUX_CLUSTER_SIGSTOP=1): on a loaded machine (CI's parallel
// packages) both hubs sometimes count each other out, and protoactor's
// control plane then stayed silent for more than the test's 30 s in one CI
// run, so the hub that should rejoin never heard it was counted out
// (docs/CLUSTER.md, "Not done yet"). The in-process TestRejoinAfterCutOff
// (internal/cluster), which runs every time, covers the rejoin itself.
func TestClusterHubRejoins(t *testing.T) {
	if os.Getenv("SOCKMUX_CLUSTER_SIGSTOP") == "" {
		t.Skip("SOCKMUX_CLUSTER_SIGSTOP=1 runs it: a process-level rejoin whose timing protoactor's control plane decides")
	}
	testkit.CheckLeaks(t) // the edge's, in this process; the hubs are processes
	key := keyFile(t, "the hubs' and edges' link key, 32 bytes or more")
	clusterKey := keyFile(t, "the control plane's cluster key, 32 bytes or more")
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	h1 := startHub(t, 1, key, clusterKey, port)
	h2 := startHub(t, 2, key, clusterKey, port, h1)
	echo := testkit.Echo(t)
	edge := runBG(t, "connect", "--drain", "0s", "--resume-window", "0", "--key-file", key,
		"-R", "*:"+port+":"+echo, h2.link)
	waitLog(t, edge, `msg="reverse forward listening"`)
	h1.proc.waitLine(t, "bridging h2's bind", `msg="cluster: bridging a bind of another hub"`, "hub="+h2.control)
	echoAt(t, net.JoinHostPort(h1.host, port))

	// Stopped past the failure window: hub 1 counts it out (and its
	// protoactor blocks its member id for good).
	from := len(h1.proc.log.String())
	if err := h2.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	t.Cleanup(func() {
		if stopped { // the cleanup's interrupt must reach a running process
			_ = h2.proc.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	waitLineFrom(t, &h1.proc.log, from, `msg="cluster: hub left"`, "hub="+h2.control)
	waitLineFrom(t, &h1.proc.log, from, `msg="cluster: bind no longer bridged"`, "hub="+h2.control)

	from, from2 := len(h1.proc.log.String()), len(h2.proc.log.String())
	if err := h2.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	continued := time.Now()
	// Up to 30 s: the rejoin waits for the two hubs' control planes to
	// carry messages again, which protoactor's endpoints, redialling, took
	// up to about 14 s to do in some runs (docs/CLUSTER.md).
	waitLineWithin(t, &h2.proc.log, from2, 30*time.Second, `msg="cluster: rejoined the cluster under a fresh member id"`)
	waitLineFrom(t, &h1.proc.log, from, `msg="cluster: hub joined"`, "hub="+h2.control)
	waitLineFrom(t, &h1.proc.log, from, `msg="cluster: bridging a bind of another hub"`, "hub="+h2.control)
	echoAt(t, net.JoinHostPort(h1.host, port))
	// A measurement for the report, not an assertion.
	t.Logf("h2's bind answered through h1 again %v after SIGCONT", time.Since(continued).Round(10*time.Millisecond))
	echoAt(t, net.JoinHostPort(h2.host, port))
}
