package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestSSHProxyCommand: a real ssh client reaches a private sshd through
// sockmux connect -W as its ProxyCommand, running a command and carrying
// 4 MiB of stdin to it intact.
func TestSSHProxyCommand(t *testing.T) {
	sshd := testkit.StartSSHD(t)
	link := testkit.FreeAddr(t)
	runBG(t, "listen", "--drain", "0s", link)
	waitListening(t, link)
	proxy := fmt.Sprintf("%s connect -W %%h:%%p %s", os.Args[0], link)
	payload := testkit.Payload(11, 4<<20)
	ssh := exec.Command("ssh", append(sshd.Args, "-o", "ProxyCommand="+proxy, "127.0.0.1", "sha256sum")...)
	ssh.Env = append(os.Environ(), "SOCKMUX_TEST_MAIN=1")
	ssh.Stdin = bytes.NewReader(payload)
	var out, errOut bytes.Buffer
	ssh.Stdout, ssh.Stderr = &out, &errOut
	if err := ssh.Run(); err != nil {
		t.Fatalf("ssh through sockmux -W: %v\n%s", err, errOut.String())
	}
	if want := fmt.Sprintf("%x", sha256.Sum256(payload)); !strings.HasPrefix(out.String(), want) {
		t.Fatalf("sha256sum over ssh said %q, want %s\n%s", out.String(), want, errOut.String())
	}
}

// TestStdioForward: -W exits 0 when the stream ends cleanly, and 1 with
// the reason when the peer refuses the open or the target resets it.
func TestStdioForward(t *testing.T) {
	link := testkit.FreeAddr(t)
	runBG(t, "listen", "--drain", "0s", link)
	waitListening(t, link)
	bye := testkit.Greeter(t, "bye")
	reset := testkit.Serve(t, func(c net.Conn) {
		io.Copy(io.Discard, c) // the stream is open: -W's stdin (none) ended
		c.Write([]byte("partial"))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	for _, tc := range []struct {
		name, target string
		code         int
		stdout, log  string
	}{
		{"clean end", bye, 0, "bye", ""},
		// What came before a RST may be lost with it (the kernel drops
		// unread data when it arrives): stdout is not checked.
		{"reset", reset, 1, "*", "the stream was reset"},
		{"refused", "10.255.255.1:22", 1, "", "not allowed by the peer's --allow-target policy"},
		{"with -L", "", 2, "", "-W carries stdin and stdout only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"connect", "-W", tc.target, link}
			if tc.target == "" {
				args = []string{"connect", "-W", bye, "-L", "1:a:2", link}
			}
			c := exec.Command(os.Args[0], args...)
			c.Env = append(os.Environ(), "SOCKMUX_TEST_MAIN=1")
			var out, errOut bytes.Buffer
			c.Stdout, c.Stderr = &out, &errOut
			err := c.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || tc.stdout != "*" && out.String() != tc.stdout || !strings.Contains(errOut.String(), tc.log) {
				t.Fatalf("exit %d, stdout %q; want %d, %q with %q in:\n%s", code, out.String(), tc.code, tc.stdout, tc.log, errOut.String())
			}
		})
	}
}
