package bench

import (
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// startOnFreePort starts the server that command makes for a free loopback port
// and waits for it to print ready (on stdout; on stderr with
// readyOnStderr); a port taken between choosing it and the server binding
// it is tried again, three times in all. It returns the running command and
// its address.
func startOnFreePort(name string, command func(port string) *exec.Cmd, ready string, readyOnStderr bool) (*exec.Cmd, string, error) {
	var cmd *exec.Cmd
	var port string
	err := startTries(func() (err error) {
		if port, err = freePort(); err != nil {
			return err
		}
		cmd = command(port)
		return waitLine(cmd, readyOnStderr, ready, 10*time.Second)
	}, func() {
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	return cmd, "127.0.0.1:" + port, nil
}

// serverProc is a server process of a benchmark's on a loopback port.
type serverProc struct {
	cmd  *exec.Cmd
	addr string
}

// Addr is the server's address.
func (s *serverProc) Addr() string { return s.addr }

// Close ends the server.
func (s *serverProc) Close() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// startTries runs start until it works, three tries at most: a port taken
// between choosing it and binding it fails a start, and the next try
// chooses another. stop undoes a failed try; a missing tool is not tried
// again.
func startTries(start func() error, stop func()) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = start(); err == nil {
			return nil
		}
		stop()
		if errors.Is(err, ErrMissingTool) {
			break
		}
	}
	return err
}
