//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// The child "sockmux listen" of TestFDLimit runs under RLIMIT_NOFILE
// childNofile, set by init when the environment asks for it: a Go
// program raises its soft limit to the hard one as it starts, so a limit
// set by the parent (ulimit -Sn, prlimit) before exec would not hold.
const (
	nofileEnv   = "SOCKMUX_TEST_NOFILE"
	childNofile = 256
	// floodConns is how many idle connections a flood opens: more than
	// the child's descriptors, fewer than the kernel's accept backlog
	// (somaxconn, 4096 by default), so every dial completes.
	floodConns = 400
	// noRlimitExit is the child's exit code when it cannot set the limit.
	noRlimitExit = 3
)

func init() {
	v := os.Getenv(nofileEnv)
	if v == "" {
		return
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err == nil {
		err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot set RLIMIT_NOFILE to %s: %v\n", v, err)
		os.Exit(noRlimitExit)
	}
}

// child is a sockmux process started from the test binary.
type child struct {
	cmd    *exec.Cmd
	log    syncBuffer
	exited chan error
}

// startLimited runs "sockmux args..." under RLIMIT_NOFILE nofile; it is
// interrupted, and waited for, when the test ends. A child that cannot
// set the limit skips the test.
func startLimited(t testing.TB, nofile int, args ...string) *child {
	t.Helper()
	return startChild(t, []string{nofileEnv + "=" + strconv.Itoa(nofile)}, args...)
}

// startChild runs "sockmux args..." as a process of its own, with env
// added to the test's environment; it is interrupted, and waited for,
// when the test ends.
func startChild(t testing.TB, env []string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], args...), exited: make(chan error, 1)}
	c.cmd.Env = append(append(os.Environ(), "SOCKMUX_TEST_MAIN=1"), env...)
	c.cmd.Stderr = &c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// waitLine waits for a line of log holding every one of parts and
// returns it; a child that exits first fails the test, or skips it if
// it could not set its limit.
func (c *child) waitLine(t testing.TB, what string, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if line, ok := findLine(c.log.String(), parts...); ok {
			return line
		}
		select {
		case err := <-c.exited:
			c.exited <- err
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == noRlimitExit {
				t.Skipf("this environment cannot lower RLIMIT_NOFILE: %s", c.log.String())
			}
			t.Fatalf("sockmux exited (%v) before logging %s:\n%s", err, what, c.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sockmux did not log %s:\n%s", what, c.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countLines is how many lines of log hold every one of parts.
func countLines(log string, parts ...string) int {
	n := 0
	for line := range strings.Lines(log) {
		if _, ok := findLine(line, parts...); ok {
			n++
		}
	}
	return n
}

// flood opens n idle connections to addr; they are closed by the
// function it returns, or when the test ends.
func flood(t testing.TB, addr string, n int) (closeAll func()) {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	var once sync.Once
	closeAll = func() {
		once.Do(func() {
			for _, c := range conns {
				c.Close()
			}
		})
	}
	t.Cleanup(closeAll)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("flooding %s: %v", addr, err)
		}
		conns = append(conns, c)
	}
	return closeAll
}

// raiseOwnLimit makes sure this process has descriptors for the floods
// and the connections the forwards' streams make here; it skips the test
// when it cannot.
func raiseOwnLimit(t testing.TB, want uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= want {
		return
	}
	if lim.Max < want {
		t.Skipf("the test needs %d descriptors; the hard limit is %d", want, lim.Max)
	}
	old := lim
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("raising RLIMIT_NOFILE to %d: %v", want, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// needBacklog skips the test unless the kernel queues a flood's
// connections the child cannot accept: a listener's backlog is
// somaxconn, and dials past it would hang.
func needBacklog(t testing.TB, n int) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Skipf("no somaxconn to check the accept backlog against: %v", err)
	}
	if got, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || got < n {
		t.Skipf("the accept backlog (net.core.somaxconn %s) is under the %d connections of a flood", strings.TrimSpace(string(b)), n)
	}
}

// burst floods addr, one of the child's listeners, until the child logs
// that accepting on it fails for want of descriptors, then lets go.
func burst(t testing.TB, c *child, addr string) {
	t.Helper()
	release := flood(t, addr, floodConns)
	c.waitLine(t, "EMFILE accepting on "+addr, "accept tcp "+addr, "too many open files")
	release()
}

var failuresRE = regexp.MustCompile(`\bfailures=[1-9][0-9]* `)

// recovered checks the child's log for one burst of accept failures on
// the listener what, listening on addr: one line at its start and one at
// its end, counting the failures.
func recovered(t testing.TB, c *child, what, addr string) {
	t.Helper()
	attrs := []string{"accepting=" + what, "listen=" + addr + " "}
	line := c.waitLine(t, "the end of the "+what+" burst", append([]string{`msg="accepting again"`}, attrs...)...)
	if !failuresRE.MatchString(line) {
		t.Errorf("the burst's end does not count its failures: %s", line)
	}
	if n := countLines(c.log.String(), append([]string{`msg="accept failing; retrying"`}, attrs...)...); n != 1 {
		t.Errorf("%d lines start the %s burst, want 1:\n%s", n, what, c.log.String())
	}
}

// TestFDLimit is the report, run: "sockmux listen" under
// "ulimit -n 256", 400 idle connections to a port, closed; the daemon
// must accept on that port again. It floods, in turn, the link port (its
// pre-authentication gate holds the flood to 32 descriptors; a connect
// then gets a link), a -L forward and a -R the peer asked for (a
// checksummed transfer then passes through each); last, a second peer's
// BINDs take every descriptor while a second forward is flooded, and
// that forward carries again once the peer has gone.
func TestFDLimit(t *testing.T) {
	testkit.CheckLeaks(t)
	raiseOwnLimit(t, 4*floodConns)
	needBacklog(t, floodConns)
	echo := testkit.Echo(t)
	link, fwd, fwd2, rfwd := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	// --max-binds is raised so that the last phase's BIND flood can
	// exhaust the descriptors (by default 64 binds per peer stop it
	// first; TestMaxBinds covers that).
	listen := startLimited(t, childNofile, "listen", "--drain", "0s", "--max-binds", "1000", "-L", fwd+":"+echo, "-L", fwd2+":"+echo, link)
	listen.waitLine(t, "listening for links", `msg="listening for links"`)

	// The link port: its pre-authentication gate evicts idle
	// connections from one source past 32, so the flood costs 32
	// descriptors and no EMFILE; a link must still come up after it.
	release := flood(t, link, floodConns)
	listen.waitLine(t, "the gate evicting the flood's idle connections", "evicted the oldest idle connection")
	release()
	runBG(t, "connect", "--drain", "0s", "-R", rfwd+":"+echo, link)
	listen.waitLine(t, "a link after the flood", `msg="link up"`)
	listen.waitLine(t, "the peer's -R listening", `msg="reverse forward listening for the peer"`, "listen="+rfwd)

	for _, f := range []struct{ what, addr string }{{"forward", fwd}, {`"reverse forward"`, rfwd}} {
		burst(t, listen, f.addr)
		echoThroughFwd(t, f.addr, 7)
		recovered(t, listen, f.what, f.addr)
	}

	// A peer whose -R listeners take every descriptor: its BINDs past the
	// limit are refused, and the second forward, flooded meanwhile, keeps
	// failing to accept after the flood has gone, until the peer goes too.
	// The peer may not choose port 0, and asks for a port on as many
	// loopback addresses as the child has descriptors.
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	args := []string{"connect", "--drain", "0s"}
	for i := range childNofile {
		args = append(args, "-R", fmt.Sprintf("127.0.%d.%d:%s:%s", 1+i/250, 1+i%250, port, echo))
	}
	bctx, bcancel := context.WithCancel(context.Background())
	var blog syncBuffer
	bdone := make(chan struct{})
	go func() {
		defer close(bdone)
		run(bctx, append(args, link), io.Discard, &blog)
	}()
	listen.waitLine(t, "a BIND refused for want of descriptors", `msg="reverse forward refused"`, "too many open files")
	burst(t, listen, fwd2)
	bcancel()
	<-bdone
	listen.waitLine(t, "the BIND flooder's link down", `msg="link down"`)
	echoThroughFwd(t, fwd2, 8)
	recovered(t, listen, "forward", fwd2)
}
