//go:build unix

package procgroup

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestEndTakesTheGroup: what a command started in the background ends
// with it, on Kill and on Terminate. The shell and its sleep share its
// stdout; the pipe's end is read only once both are gone.
func TestEndTakesTheGroup(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*exec.Cmd)
		sig  syscall.Signal
	}{{"kill", Kill, syscall.SIGKILL}, {"terminate", Terminate, syscall.SIGTERM}} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", "sleep 600 & echo ready; wait")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := Start(cmd); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			br := bufio.NewReader(out)
			if line, err := br.ReadString('\n'); err != nil || line != "ready\n" {
				t.Fatalf("the shell said %q, %v", line, err)
			}
			tc.end(cmd)
			// A bound on the wait, not a timing assert: a child that
			// outlived the group holds the pipe for ten minutes.
			_ = out.(*os.File).SetReadDeadline(time.Now().Add(time.Minute))
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Fatalf("after the group's end the pipe gave %q, %v: the background sleep outlived it", rest, err)
			}
			var ee *exec.ExitError
			if err := cmd.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != tc.sig {
				t.Fatalf("the command ended with %v, want the signal %v", err, tc.sig)
			}
		})
	}
}
