// Package procgroup starts a command in a process group of its own and
// ends the group with it, so that what the command starts goes with it:
// an exec: carrier's shell and its pipeline, the sshd and servers the
// tests and benchmarks run. Process groups are a unix thing; on Windows
// the command alone is killed (its own children are not), which
// procgroup_windows.go says.
package procgroup

import (
	"os/exec"
	"syscall"
)

// Set has cmd, once started, run in a process group of its own (in
// cmd.SysProcAttr, made when nil, its other fields kept).
func Set(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	setGroup(cmd.SysProcAttr)
}

// Start starts cmd in a process group of its own.
func Start(cmd *exec.Cmd) error {
	Set(cmd)
	return cmd.Start()
}

// Terminate asks cmd's process group to end (SIGTERM); on Windows it
// kills the command.
func Terminate(cmd *exec.Cmd) { terminate(cmd) }

// Kill kills cmd's process group (SIGKILL); on Windows the command.
func Kill(cmd *exec.Cmd) { kill(cmd) }
