//go:build unix

package procgroup

import (
	"os/exec"
	"syscall"
)

func setGroup(a *syscall.SysProcAttr) { a.Setpgid = true }

// The group's id is the command's pid (Setpgid with Pgid 0); a negative
// pid signals the group.
func terminate(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func kill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
