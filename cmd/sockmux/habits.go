package main

// ssh's habits on the command line: -v and -q, -N, -f, -o key=value, and
// the version every command reports.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// habits are the flags ssh users type out of habit, on the commands that
// run a link. They are the command line's, not keys of a config file.
type habits struct {
	noCommand  bool     // -N: accepted; sockmux never runs a remote command
	background bool     // -f
	options    []string // -o key=value
}

// addHabitFlags defines -N, -o and, unless ready is "" (the command
// cannot go to the background), -f on f; ready says when -f's parent exits.
func (h *habits) addHabitFlags(f *pflag.FlagSet, ready string) {
	f.BoolVarP(&h.noCommand, "no-command", "N", false, "accepted as with ssh, and changes nothing: sockmux never runs a remote command")
	if ready != "" {
		f.BoolVarP(&h.background, "background", "f", false, "go to the background once "+ready+" (the parent prints the pid on stdout and exits 0)")
	}
	f.StringArrayVarP(&h.options, "option", "o", nil, "set any flag of this command as `KEY=VALUE`, by its long name (as in a config file's [[link]] table; repeatable)")
}

// habitFlags are the names -o may not set: they are not config keys.
var habitFlags = []string{"no-command", "background", "option", "help", "version"}

// apply sets every -o KEY=VALUE on fs, as if --KEY VALUE had been given.
func (h *habits) apply(fs *pflag.FlagSet) error {
	for _, kv := range h.options {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return flagErr("option", fmt.Errorf("%w: -o %q: want KEY=VALUE", errUsage, kv))
		}
		if fs.Lookup(k) != nil && slices.Contains(habitFlags, k) {
			return flagErr("option", fmt.Errorf("%w: -o %s: -o sets a link's settings, and --%s is the command's own: give it as a flag", errUsage, k, k))
		}
		if fs.Lookup(k) == nil {
			var known []string
			for _, n := range flagNames(fs) {
				if !slices.Contains(habitFlags, n) {
					known = append(known, n)
				}
			}
			return flagErr("option", fmt.Errorf("%w: -o %s: no such key%s", errUsage, k, didYouMean(k, known, strconv.Quote)))
		}
		if err := fs.Set(k, v); err != nil {
			return flagErr(k, fmt.Errorf("%w: -o %s: %w", errUsage, kv, err))
		}
	}
	return nil
}

// backgroundEnv names the descriptor a -f child reports readiness on.
const backgroundEnv = "SOCKMUX_BACKGROUND_FD"

// errBackgrounded is the parent's end after its -f child said it is ready:
// exit 0.
var errBackgrounded = errors.New("running in the background")

// inBackground tells whether this process is a -f child.
func inBackground() bool { return os.Getenv(backgroundEnv) != "" }

// goBackground runs this command again as a child in a session of its
// own, stdin from /dev/null, and waits until the child is ready (it calls
// readyForeground) or exits. Go cannot fork a running process, so -f is
// a re-exec, as daemons written in Go do. Once the child is ready its pid
// goes to stdout alone on a line, for pid=$(sockmux connect -f ...), and
// a sentence saying so to stderr.
func goBackground(stdout, stderr io.Writer) error {
	if err := backgroundAvailable(); err != nil {
		return fmt.Errorf("-f: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("-f: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("-f: %w", err)
	}
	defer r.Close()
	c := exec.Command(exe, os.Args[1:]...)
	c.Env = append(os.Environ(), backgroundEnv+"=3")
	c.ExtraFiles = []*os.File{w} // fd 3 in the child
	// The child's log goes where ours does, as ssh -f's does. A file is
	// handed over as it is: through a pipe, exec would copy for the child
	// with a goroutine of this process, which is about to exit.
	if f, ok := stderr.(*os.File); ok {
		c.Stderr = f
	} else {
		c.Stderr = os.Stderr
	}
	c.SysProcAttr = newSession()
	if err := c.Start(); err != nil {
		w.Close()
		return fmt.Errorf("-f: %w", err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	if strings.TrimSpace(line) == "ready" {
		fmt.Fprintln(stdout, c.Process.Pid)
		fmt.Fprintf(stderr, "sockmux: running in the background, pid %d\n", c.Process.Pid)
		_ = c.Process.Release()
		return errBackgrounded
	}
	// The child ended before it was ready; it logged why.
	err = c.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.ExitCode(), err: errors.New("the background process exited before it was ready")}
	}
	return fmt.Errorf("the background process exited before it was ready: %v", err)
}

// readyForeground tells a waiting -f parent that this child is ready, once.
func readyForeground() {
	if !inBackground() {
		return
	}
	fd, err := strconv.Atoi(os.Getenv(backgroundEnv))
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "background-ready")
	if f == nil {
		return
	}
	fmt.Fprintln(f, "ready")
	f.Close()
	os.Unsetenv(backgroundEnv)
}

// exitError ends the command with a given exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// versionString is the version, module and commit this binary was built
// from, as `sockmux version` and every command's --version print it.
func versionString() string {
	mod, commit, modified := "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		mod = bi.Main.Path + " " + bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if commit == "" {
		commit = pseudoCommit(mod)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sockmux %s", version)
	if mod != "" {
		fmt.Fprintf(&b, "\nmodule %s", strings.TrimSpace(mod))
	}
	if commit != "" {
		if modified {
			commit += " (modified)"
		}
		fmt.Fprintf(&b, "\ncommit %s", commit)
	}
	fmt.Fprintf(&b, "\n%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}

// pseudoCommit is the commit a pseudo-version names
// ("v0.0.0-20261201231344-8e330cfcb628+dirty"), or "" for a tagged
// version: with -buildvcs=false the module version still says it.
func pseudoCommit(mod string) string {
	v := strings.TrimSuffix(mod, "+dirty")
	i := strings.LastIndexByte(v, '-')
	if i < 0 || len(v)-i-1 != 12 {
		return ""
	}
	h := v[i+1:]
	for _, c := range h {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return ""
		}
	}
	if strings.HasSuffix(mod, "+dirty") {
		h += " (modified)"
	}
	return h
}

func versionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, module and commit this binary was built from",
		Args:    cobra.NoArgs,
		Example: "  sockmux version\n  sockmux connect --version",
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprint(stdout, versionString())
			return nil
		},
	}
}

// setVersions gives every command --version.
func setVersions(root *cobra.Command) {
	v := versionString()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Version = v
		c.SetVersionTemplate("{{.Version}}")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
