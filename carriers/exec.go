package carriers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/sockmux/sockmux/internal/procgroup"
)

// Grace periods of an exec: carrier.
const (
	// execExitGrace is how long Close, having closed the command's stdin
	// and stdout, lets it exit by itself (flushing what it was sending)
	// before SIGTERM.
	execExitGrace = time.Second
	// execKillGrace is how long Close waits after SIGTERM before SIGKILL.
	execKillGrace = time.Second
	// execExitWait is how long a Read that met the end of the command's
	// stdout waits for the command to exit, to tell its exit status.
	execExitWait = 2 * time.Second
	// execStderrGrace is how long Close lets the stderr reader log what
	// is left once the command is reaped.
	execStderrGrace = 250 * time.Millisecond
)

// execDialer starts a command per Dial; its stdin and stdout are the
// carrier.
type execDialer struct {
	command string
	log     *slog.Logger
}

func (d *execDialer) String() string { return "exec:" + d.command }

// Dial starts `sh -c COMMAND` in a process group of its own (on Windows
// `cmd /C COMMAND`: see exec_windows.go). It fails only
// when the shell cannot be started: a command that does not exist or
// fails at once shows as a Read error naming its exit status.
func (d *execDialer) Dial(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var files []*os.File // every pipe end, for closing on failure
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	fail := func(err error) (net.Conn, error) {
		closeAll(files...)
		return nil, fmt.Errorf("exec carrier %q: %w", d.command, err)
	}
	inR, inW, err := pipe()
	if err != nil {
		return fail(err)
	}
	outR, outW, err := pipe()
	if err != nil {
		return fail(err)
	}
	errR, errW, err := pipe()
	if err != nil {
		return fail(err)
	}
	cmd := shellCommand(d.command)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := procgroup.Start(cmd); err != nil {
		return fail(err)
	}
	closeAll(inR, outW, errW) // the child's ends
	pid := cmd.Process.Pid
	c := &execConn{
		fileConn:   newFileConn(outR, inW, fileAddr{"exec", "pid " + strconv.Itoa(pid)}, fileAddr{"exec", d.command}),
		cmd:        cmd,
		stderr:     errR,
		exited:     make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	c.fileConn.cleanup = c.reap
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	go c.logStderr(d.log.With("command", d.command, "pid", pid))
	return c, nil
}

// execConn is the carrier of one command: reads are its stdout, writes its
// stdin.
type execConn struct {
	*fileConn
	cmd        *exec.Cmd
	stderr     *os.File
	exited     chan struct{} // closed once the command is reaped
	waitErr    error         // how it exited; read after exited is closed
	stderrDone chan struct{}
}

// Read reads the command's stdout. At its end Read waits (briefly) for
// the command to exit: a command that failed gives an error naming its
// exit status, one that succeeded gives io.EOF.
func (c *execConn) Read(b []byte) (int, error) {
	n, err := c.fileConn.Read(b)
	if err != io.EOF {
		return n, err
	}
	t := time.NewTimer(execExitWait)
	defer t.Stop()
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return n, c.opError("read", fmt.Errorf("carrier command ended: %w", c.waitErr))
		}
	case <-t.C:
	}
	return n, io.EOF
}

// reap ends the command once its stdin and stdout are closed: it may exit
// by itself for a grace period, then its process group gets SIGTERM, and
// SIGKILL after another (on Windows the process is killed after the
// first); the group is signalled even when the command
// exited, so that nothing it started outlives it. Then it is reaped and
// the last of its stderr logged.
func (c *execConn) reap() error {
	t := time.NewTimer(execExitGrace)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
	}
	procgroup.Terminate(c.cmd)
	t.Reset(execKillGrace)
	select {
	case <-c.exited:
	case <-t.C:
		procgroup.Kill(c.cmd)
		<-c.exited
	}
	// Something the command started may still hold stderr open.
	_ = c.stderr.SetReadDeadline(time.Now().Add(execStderrGrace))
	<-c.stderrDone
	return c.stderr.Close()
}

// logStderr logs each line the command writes to its stderr.
func (c *execConn) logStderr(log *slog.Logger) {
	defer close(c.stderrDone)
	br := bufio.NewReader(c.stderr)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && (err == nil || err == bufio.ErrBufferFull || errors.Is(err, io.EOF)) {
			log.Warn("carrier command stderr", "line", string(trimEOL(line)))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
