package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

// The idle workload holds 10,000 streams. Each has four sockets (the
// client's, the near peer's, the far peer's, the server's), 40,000 file
// descriptors, past what one process may open on many machines (the
// reference machine's hard limit is 20,000 and cannot be raised). So the
// server and each peer run in a helper process of their own, and the
// clients in the caller's: at most one socket a stream in each. It also
// makes the figure clean: each peer's process holds nothing but that peer.

// HelperEnv names the environment variable that makes a process a helper
// of the idle workload: its value is the role and its arguments.
const HelperEnv = "SOCKMUX_BENCH_HELPER"

// HelperProfileEnv names the environment variable that, set to a
// directory, makes each helper record every allocation and write a heap
// profile there each time it is asked for its memory (ROLE-N.pprof, N
// counting from 0): the profile after the streams opened against the one
// before (go tool pprof -diff_base) shows what a stream holds, which the
// totals alone cannot.
const HelperProfileEnv = "SOCKMUX_BENCH_HEAPPROFILE"

// HelperCommand returns the command that runs this program again, to be
// made a helper (by HelperEnv, which the caller adds). By default it is the
// running executable with no arguments, which suits a test binary whose
// TestMain calls RunHelper first, and cmd/sockmux-bench, whose main does; a
// program whose helpers start otherwise sets its own.
var HelperCommand = func() (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe), nil
}

// RunHelper runs this process as a helper when HelperEnv asks it to, until
// its standard input ends, and reports whether it did. Call it before
// anything else: TestMain, a command's Run.
func RunHelper() bool {
	spec := os.Getenv(HelperEnv)
	if spec == "" {
		return false
	}
	if err := runHelper(strings.Fields(spec), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
	}
	return true
}

// runHelper starts what role asks for, says "ready ADDR" on out, answers
// the questions read from in ("mem": "mem HEAP STACK RSS"; "held", of the
// hold role: "held N"; "hops PATH", of a hop-traced build: the events
// recorded so far written to PATH, "hops PATH") and returns at the end of
// in, for the process to exit.
func runHelper(role []string, in io.Reader, out io.Writer) error {
	if len(role) == 0 {
		return errors.New("helper: no role")
	}
	if run, ok := linkRoles[role[0]]; ok { // the idle-links workload's (edges.go)
		return run(role[1:], in, out)
	}
	var (
		t    Tunnel
		hold *Hold
		err  error
	)
	arg := func(i int) string {
		if i < len(role) {
			return role[i]
		}
		return ""
	}
	streams, _ := strconv.Atoi(arg(len(role) - 1))
	o := Options{Streams: streams}
	profDir := os.Getenv(HelperProfileEnv)
	if profDir != "" {
		runtime.MemProfileRate = 1
	}
	profiles := heapProfiles{dir: profDir}
	switch role[0] {
	case "hold":
		hold, err = NewHold()
		t = hold
	case "far", "near":
		sys, ok := SystemByName(arg(1))
		if !ok || sys.Far == nil {
			return fmt.Errorf("helper: no system %q with peers apart", arg(1))
		}
		if role[0] == "far" { // far SYSTEM TARGET STREAMS
			t, err = sys.Far(arg(2), o)
		} else { // near SYSTEM CARRIER TARGET STREAMS
			t, err = sys.Near(arg(2), arg(3), o)
		}
	default:
		return fmt.Errorf("helper: unknown role %q", role[0])
	}
	if err != nil {
		return err
	}
	// No Close at the end: the process ends and the OS frees it all.
	fmt.Fprintf(out, "ready %s\n", t.Addr())
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "mem":
			m := MeasureMemory()
			if err := profiles.write(role[0]); err != nil {
				return err
			}
			fmt.Fprintf(out, "mem %d %d %d\n", m.Heap, m.Stack, m.RSS)
		case "held":
			var n int64
			if hold != nil {
				n = hold.Held()
			}
			fmt.Fprintf(out, "held %d\n", n)
		default:
			if path, ok := strings.CutPrefix(sc.Text(), "hops "); ok {
				if err := writeHops(path); err != nil {
					return err
				}
				fmt.Fprintf(out, "hops %s\n", path)
				continue
			}
			fmt.Fprintf(out, "error unknown question %q\n", sc.Text())
		}
	}
	return nil
}

// heapProfiles writes a helper's heap profiles into dir (none when dir is
// empty), ROLE-N.pprof, N counting from 0.
type heapProfiles struct {
	dir string
	n   int
}

func (p *heapProfiles) write(role string) error {
	if p.dir == "" {
		return nil
	}
	p.n++
	return writeHeapProfile(filepath.Join(p.dir, fmt.Sprintf("%s-%d.pprof", role, p.n-1)))
}

// writeHeapProfile writes the live heap's profile to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// helper is a helper process, seen from its parent.
type helper struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
}

// startHelper runs a helper with role and waits for it to be ready.
func startHelper(role ...string) (*helper, error) {
	cmd, err := HelperCommand()
	if err != nil {
		return nil, err
	}
	cmd.Env = append(os.Environ(), HelperEnv+"="+strings.Join(role, " "))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &helper{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	f, err := h.line("ready")
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("helper %s: %w", role[0], err)
	}
	h.addr = f[0]
	return h, nil
}

// line reads the helper's next line, which must start with want, and
// returns the rest of its fields.
func (h *helper) line(want string) ([]string, error) {
	if !h.out.Scan() {
		if err := h.out.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("the helper ended")
	}
	f := strings.Fields(h.out.Text())
	if len(f) == 0 || f[0] != want {
		return nil, fmt.Errorf("the helper said %q", h.out.Text())
	}
	return f[1:], nil
}

// ask asks the helper a question and returns the fields of its answer.
func (h *helper) ask(q string) ([]string, error) {
	if _, err := fmt.Fprintln(h.in, q); err != nil {
		return nil, err
	}
	return h.line(q)
}

// memory asks the helper for its memory.
func (h *helper) memory() (Memory, error) {
	v, err := h.askInts("mem", 3)
	if err != nil {
		return Memory{}, err
	}
	return Memory{Heap: v[0], Stack: v[1], RSS: v[2]}, nil
}

// askInts asks the helper q and reads its answer as n integers.
func (h *helper) askInts(q string, n int) ([]int64, error) {
	f, err := h.ask(q)
	if err != nil {
		return nil, err
	}
	if len(f) != n {
		return nil, fmt.Errorf("%s: %q", q, f)
	}
	v := make([]int64, n)
	for i := range v {
		if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Close ends the helper: killed, not asked, since its measurements are
// taken and a peer whose carrier is gone may take long to unwind (yamux
// wakes 10,000 stream readers on one channel and spends tens of seconds in
// select's locks).
func (h *helper) Close() error {
	h.in.Close()
	_ = h.cmd.Process.Kill()
	return h.cmd.Wait()
}
