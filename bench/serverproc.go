package bench

import (
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
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		cmd := command(port)
		if err = waitLine(cmd, readyOnStderr, ready, 10*time.Second); err == nil {
			return cmd, "127.0.0.1:" + port, nil
		}
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if attempt == 2 {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
	}
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
