package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// processTree is a tunnel whose peers are processes of their own: the
// redis workload reports the CPU they spend per request.
type processTree interface {
	// Processes are the tunnel's processes; their descendants count too
	// (sshd's per-connection children).
	Processes() []int
}

// Processes are ssh's and sshd's.
func (t *sshTunnel) Processes() []int { return pidsOf(t.ssh, t.sshd) }

// Processes are the two peers' helpers.
func (a *apart) Processes() []int { return pidsOf(a.near.cmd, a.far.cmd) }

// treeUse is what the processes roots and all their descendants have
// used, from /proc (Linux; nothing elsewhere): user and system CPU time,
// in steps of the kernel's 10 ms clock tick, and how many times one of
// their threads went to sleep (voluntary context switches: each is a
// wake-up later).
func treeUse(roots []int) (cpu time.Duration, sleeps int64) {
	if len(roots) == 0 {
		return 0, 0
	}
	type proc struct {
		ppid int
		cpu  int64
	}
	procs := map[int]proc{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses and
		// may hold spaces: state ppid ... utime (14th) stime (15th).
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		procs[pid] = proc{ppid, ut + st}
	}
	in := map[int]bool{}
	for _, r := range roots {
		in[r] = true
	}
	var ticks int64
	for pid, p := range procs {
		for q, depth := pid, 0; q > 1 && depth < 16; q, depth = procs[q].ppid, depth+1 {
			if in[q] {
				ticks += p.cpu
				sleeps += voluntarySwitches(pid)
				break
			}
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond, sleeps // USER_HZ is 100
}

// voluntarySwitches sums the voluntary context switches of pid's threads.
func voluntarySwitches(pid int) int64 {
	var n int64
	files, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "status"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				k, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += k
			}
		}
	}
	return n
}

// pidsOf are the processes of the commands that have started.
func pidsOf(cmds ...*exec.Cmd) []int {
	var pids []int
	for _, c := range cmds {
		if c != nil && c.Process != nil {
			pids = append(pids, c.Process.Pid)
		}
	}
	return pids
}
