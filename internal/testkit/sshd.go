package testkit

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/procgroup"
)

// SSHD is an OpenSSH server a test started on a loopback port, with keys
// of its own: Args are what an ssh client needs to log in to it.
type SSHD struct {
	Addr, Port string
	// Args are ssh's options for it: the client key, the known host key,
	// the port and the user, no config file, batch mode.
	Args []string
}

// StartSSHD starts Debian's sshd on a loopback port with a host key and
// an authorized client key generated for the test; it stops with the
// test. Without sshd, ssh or ssh-keygen the test skips (fails under
// SOCKMUX_REQUIRE_TOOLS=1).
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		sshd = NeedTool(t, "sshd")
	}
	NeedTool(t, "ssh")
	keygen := NeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	for _, k := range []string{"host", "client"} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "sockmux-test", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), read("client.pub"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755) // privilege separation; a machine that never ran sshd has none
	}
	addr := FreeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	conf := strings.Join([]string{
		"ListenAddress " + addr,
		"HostKey " + filepath.Join(dir, "host"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile none", "UsePAM no", "StrictModes no",
		"PasswordAuthentication no", "KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password", "",
	}, "\n")
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshd, "-D", "-e", "-f", confPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := procgroup.Start(cmd); err != nil { // its per-connection children go with it
		t.Fatal(err)
	}
	t.Cleanup(func() {
		procgroup.Kill(cmd)
		cmd.Wait()
	})
	listening := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var said []string
		for sc.Scan() {
			said = append(said, sc.Text())
			if strings.Contains(sc.Text(), "Server listening on") {
				listening <- nil
				for sc.Scan() { // drain: sshd must not block on a full pipe
				}
				return
			}
		}
		listening <- fmt.Errorf("sshd ended: %s", strings.Join(said, "\n"))
	}()
	select {
	case err := <-listening:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("sshd did not say it listens")
	}
	known := fmt.Sprintf("[127.0.0.1]:%s %s", port, read("host.pub"))
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(known), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return &SSHD{Addr: addr, Port: port, Args: []string{"-F", "/dev/null",
		"-i", filepath.Join(dir, "client"), "-p", port, "-l", u.Username,
		"-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"),
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}}
}
