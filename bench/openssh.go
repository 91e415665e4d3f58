package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sockmux/sockmux/internal/procgroup"
)

// OpenSSH is OpenSSH's port forwarding, `ssh -N -L`, through an sshd of
// its own on loopback: what users run instead of a tunnel like sockmux.
// It is measured with real clients in processes of their own (the redis
// workload); its two peers, ssh and sshd, are processes too. It is not in
// Systems: it needs Debian's openssh-server and openssh-client, and a
// workload without them skips (ErrMissingTool).
var OpenSSH = System{Name: "ssh", New: NewOpenSSH}

// SSHCipher is the one cipher the benchmark's sshd and ssh agree on:
// AES-128-GCM, the fastest OpenSSH has where the CPU has AES
// instructions (both ends encrypt every byte).
const SSHCipher = "aes128-gcm@openssh.com"

// ErrMissingTool is a program a workload needs and cannot find; a
// benchmark skips with its message.
var ErrMissingTool = errors.New("not installed")

// lookTool finds an outside program, also in the sbin folders a user's
// PATH often lacks (sshd is /usr/sbin/sshd).
func lookTool(name, pkg string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w (apt-get install %s)", name, ErrMissingTool, pkg)
}

// sshTunnel is an sshd on a loopback port and an `ssh -N -L` through it.
type sshTunnel struct {
	dir       string
	sshd, ssh *exec.Cmd
	addr      string
	closeOnce sync.Once
}

// NewOpenSSH starts an sshd on a loopback port of its own, with a host key
// and an authorized client key generated into a temporary folder and only
// SSHCipher allowed, and an `ssh -N -L` through it whose local end (Addr)
// carries each connection to target. Where sshd, ssh or ssh-keygen is
// missing the error is ErrMissingTool. The Options are ignored: OpenSSH
// runs on plain loopback with its defaults.
func NewOpenSSH(target string, _ Options) (Tunnel, error) {
	var paths [3]string
	for i, t := range [][2]string{{"sshd", "openssh-server"}, {"ssh", "openssh-client"}, {"ssh-keygen", "openssh-client"}} {
		p, err := lookTool(t[0], t[1])
		if err != nil {
			return nil, err
		}
		paths[i] = p
	}
	dir, err := os.MkdirTemp("", "sockmux-bench-ssh-")
	if err != nil {
		return nil, err
	}
	t := &sshTunnel{dir: dir}
	// A port taken between choosing it and binding it (other programs
	// run here too) fails the start; another port is tried.
	if err := startTries(func() error { return t.start(paths[0], paths[1], paths[2], target) }, t.stop); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

func (t *sshTunnel) start(sshd, ssh, keygen, target string) error {
	for _, k := range []string{"host", "client"} {
		p := filepath.Join(t.dir, k)
		os.Remove(p)
		os.Remove(p + ".pub")
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "sockmux-bench", "-f", p).CombinedOutput(); err != nil {
			return fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	hostPub, err := os.ReadFile(filepath.Join(t.dir, "host.pub"))
	if err != nil {
		return err
	}
	clientPub, err := os.ReadFile(filepath.Join(t.dir, "client.pub"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(t.dir, "authorized_keys"), clientPub, 0o600); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		// sshd's privilege separation folder; a system's sshd service
		// makes it, a container that never ran one has none.
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	sshdPort, err := freePort()
	if err != nil {
		return err
	}
	conf := strings.Join([]string{
		"ListenAddress 127.0.0.1:" + sshdPort,
		"HostKey " + filepath.Join(t.dir, "host"),
		"AuthorizedKeysFile " + filepath.Join(t.dir, "authorized_keys"),
		"PidFile none",
		"UsePAM no",
		"StrictModes no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding yes",
		"Ciphers " + SSHCipher,
		"",
	}, "\n")
	confPath := filepath.Join(t.dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return err
	}
	// -D -e: in the foreground, logging to stderr, which says when it
	// listens.
	t.sshd = exec.Command(sshd, "-D", "-e", "-f", confPath)
	procgroup.Set(t.sshd) // its per-connection children go with it
	if err := waitLine(t.sshd, true, "Server listening on", 10*time.Second); err != nil {
		return fmt.Errorf("sshd: %w", err)
	}
	known := fmt.Sprintf("[127.0.0.1]:%s %s", sshdPort, hostPub)
	if err := os.WriteFile(filepath.Join(t.dir, "known_hosts"), []byte(known), 0o600); err != nil {
		return err
	}
	u, err := user.Current()
	if err != nil {
		return err
	}
	localPort, err := freePort()
	if err != nil {
		return err
	}
	t.addr = "127.0.0.1:" + localPort
	// LocalCommand runs once the session is authenticated and the local
	// forward listens: its "ready" on stdout is the signal to start.
	t.ssh = exec.Command(ssh, "-F", "/dev/null", "-N",
		"-L", t.addr+":"+target,
		"-i", filepath.Join(t.dir, "client"),
		"-p", sshdPort, "-l", u.Username,
		"-o", "UserKnownHostsFile="+filepath.Join(t.dir, "known_hosts"),
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "Ciphers="+SSHCipher,
		"-o", "ExitOnForwardFailure=yes",
		"-o", "PermitLocalCommand=yes",
		"-o", "LocalCommand=echo ready",
		"127.0.0.1")
	procgroup.Set(t.ssh)
	if err := waitLine(t.ssh, false, "ready", 10*time.Second); err != nil {
		return fmt.Errorf("ssh -L: %w", err)
	}
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// waitLine starts cmd and waits until a line of its stderr (or stdout)
// contains want; what it says after that is read and dropped. It fails if
// cmd ends first or within timeout says nothing of the kind; the error
// then quotes what it said.
func waitLine(cmd *exec.Cmd, stderr bool, want string, timeout time.Duration) error {
	var (
		pipe io.ReadCloser
		err  error
	)
	if stderr {
		pipe, err = cmd.StderrPipe()
	} else {
		cmd.Stderr = &limitedWriter{n: 4096}
		pipe, err = cmd.StdoutPipe()
	}
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		var said []string
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				found <- nil
				_, _ = io.Copy(io.Discard, pipe)
				return
			}
			if len(said) < 20 {
				said = append(said, sc.Text())
			}
		}
		if w, ok := cmd.Stderr.(*limitedWriter); ok {
			said = append(said, w.String())
		}
		found <- fmt.Errorf("it ended without saying %q: %s", want, strings.Join(said, " | "))
	}()
	select {
	case err := <-found:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("it did not say %q within %v", want, timeout)
	}
}

// limitedWriter keeps the first n bytes written to it (a process's
// stderr, for an error message).
type limitedWriter struct {
	mu sync.Mutex
	b  strings.Builder
	n  int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if left := w.n - w.b.Len(); left > 0 {
		w.b.Write(p[:min(len(p), left)])
	}
	return len(p), nil
}

func (w *limitedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (t *sshTunnel) Addr() string { return t.addr }

// Close ends ssh, then sshd with its per-connection children, and
// removes the keys.
func (t *sshTunnel) Close() {
	t.closeOnce.Do(func() {
		t.stop()
		os.RemoveAll(t.dir)
	})
}

// stop ends the processes started, ssh first (its connection's sshd child
// then ends by itself), each with its process group.
func (t *sshTunnel) stop() {
	for _, c := range []*exec.Cmd{t.ssh, t.sshd} {
		if c == nil || c.Process == nil {
			continue
		}
		procgroup.Terminate(c)
		_ = c.Wait()
	}
	t.ssh, t.sshd = nil, nil
}
