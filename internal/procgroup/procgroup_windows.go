package procgroup

import (
	"os/exec"
	"syscall"
)

// setGroup: a new process group (CREATE_NEW_PROCESS_GROUP), which on
// Windows only decides who gets a console's Ctrl-C; no signal reaches a
// group.
func setGroup(a *syscall.SysProcAttr) { a.CreationFlags |= syscall.CREATE_NEW_PROCESS_GROUP }

// terminate: Windows has no SIGTERM to ask with, so the command is killed
// (TerminateProcess); what it started itself is not.
func terminate(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

func kill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
