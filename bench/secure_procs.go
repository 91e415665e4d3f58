package bench

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sockmux/sockmux/internal/procgroup"
)

// The secure workloads run sockmux as a user does: a `sockmux listen` and
// a `sockmux connect -L`, two processes of the binary built from this
// tree, as ssh and sshd are two processes, so that the CPU both peers
// spend is counted from /proc the same way for each.

// SockmuxBinEnv names the environment variable that points the benchmark
// at a sockmux binary to run; without it the benchmark builds one from
// this tree (go build ./cmd/sockmux) into a temporary folder, once.
const SockmuxBinEnv = "SOCKMUX_BENCH_BIN"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// sockmuxBinary is the sockmux binary the process tunnels run.
func sockmuxBinary() (string, error) {
	if p := os.Getenv(SockmuxBinEnv); p != "" {
		return p, nil
	}
	binOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			binErr = fmt.Errorf("go: %w (set %s to a sockmux binary)", ErrMissingTool, SockmuxBinEnv)
			return
		}
		dir, err := os.MkdirTemp("", "sockmux-bench-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "sockmux")
		if out, err := exec.Command(goTool, "build", "-o", binPath, "github.com/sockmux/sockmux/cmd/sockmux").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/sockmux: %v: %s (set %s to a sockmux binary)", err, out, SockmuxBinEnv)
		}
	})
	return binPath, binErr
}

// SockmuxProcs is sockmux with each peer a sockmux process: `sockmux
// listen` on a loopback port and `sockmux connect -L` to it, over tcp,
// with their defaults. Keyed, both hold a pre-shared key (--key-file): the
// link is encrypted (Noise NNpsk0, records of docs/SECURITY.md §6).
func SockmuxProcs(keyed bool) System {
	name := "sockmux-unkeyed"
	if keyed {
		name = "sockmux-keyed"
	}
	return System{Name: name, New: func(target string, _ Options) (Tunnel, error) {
		bin, err := sockmuxBinary()
		if err != nil {
			return nil, err
		}
		return startProcTunnel(bin, target, keyed, os.Getenv(ProfileEnv))
	}}
}

// BaseBinEnv names the environment variable that gives the secure
// workloads a second sockmux binary (a build of an earlier tree) to run
// beside this one, interleaved in the same rounds, as the system
// "sockmux-base-keyed": a change's before and after measured in one run.
const BaseBinEnv = "SOCKMUX_BENCH_BASE_BIN"

// SockmuxProcsBase is SockmuxProcs(true) running the binary BaseBinEnv
// names; ok is false when it names none.
func SockmuxProcsBase() (sys System, ok bool) {
	bin := os.Getenv(BaseBinEnv)
	if bin == "" {
		return System{}, false
	}
	return System{Name: "sockmux-base-keyed", New: func(target string, _ Options) (Tunnel, error) {
		return startProcTunnel(bin, target, true, os.Getenv(ProfileEnv))
	}}, true
}

// ProfileEnv names the environment variable that makes both peers of a
// SockmuxProcs tunnel profile themselves (sockmux --profile VALUE: cpu,
// mem, mutex or block); each writes its profile, when the tunnel closes,
// into a folder of its own that github.com/pkg/profile makes
// (/tmp/profileNNN/cpu.pprof): go tool pprof reads it.
const ProfileEnv = "SOCKMUX_BENCH_PROFILE"

// procTunnel is a sockmux listen and a sockmux connect -L.
type procTunnel struct {
	dir          string
	listen, conn *exec.Cmd
	addr         string
	closeOnce    sync.Once
}

func startProcTunnel(bin, target string, keyed bool, profile string) (*procTunnel, error) {
	dir, err := os.MkdirTemp("", "sockmux-bench-procs-")
	if err != nil {
		return nil, err
	}
	t := &procTunnel{dir: dir}
	var flags []string
	if keyed {
		key := make([]byte, 32)
		rand.Read(key)
		keyFile := filepath.Join(dir, "key")
		if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, err
		}
		flags = append(flags, "--key-file", keyFile)
	}
	if profile != "" {
		flags = append(flags, "--profile", profile)
	}
	// A port taken between choosing it and binding it fails the start;
	// another is tried.
	if err := startTries(func() error { return t.start(bin, target, flags) }, t.stop); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

func (t *procTunnel) start(bin, target string, flags []string) error {
	linkPort, err := freePort()
	if err != nil {
		return err
	}
	localPort, err := freePort()
	if err != nil {
		return err
	}
	link := "127.0.0.1:" + linkPort
	t.addr = "127.0.0.1:" + localPort
	t.listen = exec.Command(bin, append([]string{"listen"}, append(flags, link)...)...)
	procgroup.Set(t.listen)
	if err := waitLine(t.listen, true, `msg="listening for links"`, 10*time.Second); err != nil {
		return fmt.Errorf("sockmux listen: %w", err)
	}
	t.conn = exec.Command(bin, append([]string{"connect", "-L", t.addr + ":" + target}, append(flags, link)...)...)
	procgroup.Set(t.conn)
	if err := waitLine(t.conn, true, `msg="link up"`, 10*time.Second); err != nil {
		return fmt.Errorf("sockmux connect: %w", err)
	}
	return nil
}

func (t *procTunnel) Addr() string { return t.addr }

// Processes are the two sockmux processes.
func (t *procTunnel) Processes() []int { return pidsOf(t.listen, t.conn) }

// Close ends both processes (SIGTERM: a profiling peer writes its
// profile as it exits) and removes the key.
func (t *procTunnel) Close() {
	t.closeOnce.Do(func() {
		t.stop()
		os.RemoveAll(t.dir)
	})
}

func (t *procTunnel) stop() {
	for _, c := range []*exec.Cmd{t.conn, t.listen} {
		if c == nil || c.Process == nil {
			continue
		}
		if c.Process.Signal(syscall.SIGTERM) != nil { // none on Windows
			_ = c.Process.Kill()
		}
		_ = c.Wait()
	}
	t.conn, t.listen = nil, nil
}
