//go:build linux

package carriers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

// dialExec dials exec:command, logging to rec; t.Cleanup closes it.
func dialExec(t testing.TB, command string, rec *recorder) *execConn {
	t.Helper()
	opts := []Option{WithLogger(nil)}
	if rec != nil {
		opts = []Option{WithLogger(rec.logger())}
	}
	c, err := mustDialer(t, "exec:"+command, opts...).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*execConn)
}

// TestExecCat: what is written to the command comes back from it; closing
// its stdin ends it, and its end is EOF.
func TestExecCat(t *testing.T) {
	c := dialExec(t, "cat", nil)
	if _, err := c.Write([]byte("through cat")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "through cat" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// TestExecExit: a command that ends gives EOF when it succeeded and an
// error naming its exit status when it failed, after what it wrote; a
// command that cannot be found is such a failure.
func TestExecExit(t *testing.T) {
	cases := []struct {
		command, out, err string // err "": EOF
	}{
		{"printf hello", "hello", ""},
		{"printf partial; exit 3", "partial", "exit status 3"},
		{"/nonexistent/command", "", "exit status 127"},
	}
	for _, tc := range cases {
		t.Run(tc.command, func(t *testing.T) {
			c := dialExec(t, tc.command, nil)
			got, err := io.ReadAll(c)
			if string(got) != tc.out {
				t.Errorf("read %q, want %q", got, tc.out)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("end: %v, want EOF", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("end: %v, want an error naming %q", err, tc.err)
			}
		})
	}
}

// TestExecStderr: each line the command writes to stderr is logged at
// warn, in order.
func TestExecStderr(t *testing.T) {
	rec := newRecorder(8)
	c := dialExec(t, "echo first >&2; echo second >&2; cat", rec)
	for _, want := range []string{"first", "second"} {
		r := <-rec.notify
		if r.Message != "carrier command stderr" || r.Level != slog.LevelWarn || attr(r, "line") != want {
			t.Fatalf("logged %v %q line=%q, want warn %q line=%q", r.Level, r.Message, attr(r, "line"), "carrier command stderr", want)
		}
	}
	c.Close()
}

// TestExecCloseReaps: Close ends the command and everything in its
// process group, and reaps it: no zombie is left.
func TestExecCloseReaps(t *testing.T) {
	// The command starts a child that would outlive it, and tells its pid.
	c := dialExec(t, "sleep 1000 & echo $!; cat", nil)
	line := make([]byte, 0, 16)
	for !strings.HasSuffix(string(line), "\n") {
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil {
			t.Fatal(err)
		}
		line = append(line, b[0])
	}
	childPid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil {
		t.Fatal(err)
	}
	child, err := unix.PidfdOpen(childPid, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(child)
	pid := c.cmd.Process.Pid
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the command (pid %d) is still there after Close: kill 0 says %v", pid, err)
	}
	// A pidfd polls readable once its process has ended; bounded so that a
	// failure fails rather than hangs.
	fds := []unix.PollFd{{Fd: int32(child), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(time.Minute/time.Millisecond))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n != 1 {
			t.Fatalf("the command's child (pid %d) outlived Close: poll %d, %v", childPid, n, err)
		}
		break
	}
}

// TestExecConn: two commands joined by two FIFOs (one's stdout is the
// other's stdin) make two exec carriers a net.Conn pair.
func TestExecConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		dir := shortTempDir(t)
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		if err := ensureFifos(a, b); err != nil {
			return nil, nil, nil, err
		}
		// stdin goes to one FIFO, the other FIFO comes out on stdout. (An
		// asynchronous command's stdin is /dev/null unless redirected.)
		join := func(in, out string) string {
			return "exec 3<&0; cat <&3 >" + out + " & exec cat <" + in + " 3<&-"
		}
		d1 := mustDialer(t, "exec:"+join(b, a), WithLogger(nil))
		d2 := mustDialer(t, "exec:"+join(a, b), WithLogger(nil))
		if c1, err = d1.Dial(context.Background()); err != nil {
			return nil, nil, nil, err
		}
		if c2, err = d2.Dial(context.Background()); err != nil {
			c1.Close()
			return nil, nil, nil, err
		}
		// Each command ends once the other's stdin is closed too: close
		// both at once, or the first Close waits out its grace period.
		return c1, c2, func() {
			done := make(chan struct{})
			go func() { c1.Close(); close(done) }()
			c2.Close()
			<-done
		}, nil
	})
}

// TestExecEnvironment: the command runs with sockmux's environment, so
// that `ssh host sockmux stdio` finds ssh and its agent.
func TestExecEnvironment(t *testing.T) {
	t.Setenv("SOCKMUX_CARRIER_TEST", "inherited")
	c := dialExec(t, "printf %s \"$SOCKMUX_CARRIER_TEST\"", nil)
	got, err := io.ReadAll(c)
	if err != nil || string(got) != os.Getenv("SOCKMUX_CARRIER_TEST") {
		t.Fatalf("read %q, %v", got, err)
	}
}

// TestExecCloseKills: a command that ignores both the end of its stdin
// and SIGTERM is killed and reaped by Close.
func TestExecCloseKills(t *testing.T) {
	c := dialExec(t, "trap '' TERM; echo ready; exec sleep 1000", nil)
	buf := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	pid := c.cmd.Process.Pid
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the command (pid %d) is still there after Close: kill 0 says %v", pid, err)
	}
	var ee *exec.ExitError
	if !errors.As(c.waitErr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the command ended with %v, want killed by SIGKILL", c.waitErr)
	}
}
