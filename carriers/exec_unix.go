//go:build unix

package carriers

import "os/exec"

// shellCommand is `sh -c command`.
func shellCommand(command string) *exec.Cmd { return exec.Command("/bin/sh", "-c", command) }
