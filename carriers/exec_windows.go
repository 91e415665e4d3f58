package carriers

import (
	"os"
	"os/exec"
	"syscall"
)

// shellCommand is `%COMSPEC% /C command` (cmd.exe), Windows' sh -c. The
// command line is given as it is (SysProcAttr.CmdLine): cmd.exe parses
// its own quotes, which the escaping of exec.Command's arguments would
// break. Its end kills the command alone (internal/procgroup).
func shellCommand(command string) *exec.Cmd {
	shell := os.Getenv("COMSPEC")
	if shell == "" {
		shell = "cmd.exe"
	}
	cmd := exec.Command(shell)
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: syscall.EscapeArg(shell) + " /C " + command}
	return cmd
}
