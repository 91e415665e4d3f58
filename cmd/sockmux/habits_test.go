package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestHelpListsOnlyWhatApplies: each command's --help shows the flags it
// takes and none of another's, and has examples.
func TestHelpListsOnlyWhatApplies(t *testing.T) {
	for _, tc := range []struct {
		cmd       string
		has, lack []string
	}{
		{"listen", []string{"--tls-client-ca", "--insecure", "--state-dir", "--resume-window", "--background"},
			[]string{"--tls-fingerprint", "--tls-ca", "--carriers", "--via", "--max-retries", "--persist"}},
		{"connect", []string{"--tls-fingerprint", "--tls-ca", "--carriers", "--via", "--persist", "--background", "--option"},
			[]string{"--tls-client-ca", "--insecure", "--state-dir"}},
		{"stdio", []string{"--key-file", "--local", "--no-command"},
			[]string{"--tls-ca", "--tls-cert", "--tls-fingerprint", "--state-dir", "--resume-window", "--carriers", "--background", "--insecure"}},
		{"share", []string{"--upstream"}, []string{"--insecure", "--state-dir", "--tls-client-ca"}},
		{"run", []string{"--config"}, []string{"--local", "--tls-ca"}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(context.Background(), []string{tc.cmd, "--help"}, &out, io.Discard); code != 0 {
				t.Fatalf("%s --help: exit %d", tc.cmd, code)
			}
			help := out.String()
			if !strings.Contains(help, "Examples:\n  ") {
				t.Errorf("%s --help has no examples:\n%s", tc.cmd, help)
			}
			// A flag is defined where a line of the list starts with it.
			defines := func(f string) bool {
				return regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(strings.TrimSpace(f)) + `(\s|$)`).MatchString(help)
			}
			for _, f := range tc.has {
				if !defines(f) {
					t.Errorf("%s --help lacks %s", tc.cmd, f)
				}
			}
			for _, f := range tc.lack {
				if defines(f) {
					t.Errorf("%s --help shows %s, which it does not take", tc.cmd, f)
				}
			}
		})
	}
}

// TestEveryCommandHasExamples: no command's help is without one.
func TestEveryCommandHasExamples(t *testing.T) {
	for _, c := range newRoot(io.Discard, io.Discard).Commands() {
		if c.Example == "" && !c.Hidden && c.Name() != "help" && c.Name() != "completion" {
			t.Errorf("%s has no Example", c.Name())
		}
	}
}

// TestFlagsThatDoNotApply: a TLS flag for a carrier without TLS is a usage
// error naming the flag, on the command line and in a config file.
func TestFlagsThatDoNotApply(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"connect", "--tls-fingerprint", "AB:CD", "127.0.0.1:1"}, "--tls-fingerprint applies to tls://, wss:// and quic:// carriers only"},
		{[]string{"connect", "--tls-ca", "ca.pem", "tcp://127.0.0.1:1"}, "--tls-ca applies to tls://, wss:// and quic:// carriers only"},
		{[]string{"connect", "--tls-ca", "ca.pem", "exec:true"}, "exec://"},
		{[]string{"listen", "--tls-cert", "c.pem", "127.0.0.1:0"}, "--tls-cert applies to tls://, wss:// and quic:// carriers only"},
		{[]string{"listen", "--state-dir", "/tmp/x", "127.0.0.1:0"}, "--state-dir applies"},
		{[]string{"connect", "--via", "127.0.0.1:1", "--tls-fingerprint", "AB", "127.0.0.1:2"}, "--tls-fingerprint applies"},
		{[]string{"listen", "--tls-fingerprint", "AB", "127.0.0.1:0"}, "unknown flag: --tls-fingerprint"},
		{[]string{"stdio", "--tls-ca", "ca.pem"}, "unknown flag: --tls-ca"},
		{[]string{"stdio", "-f"}, "unknown shorthand flag: 'f'"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var errOut bytes.Buffer
			if code := run(context.Background(), tc.args, io.Discard, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("exit %d, want 2 with %q: %s", code, tc.want, errOut.String())
			}
		})
	}
	path := writeConfig(t, "[[link]]\nname = \"a\"\nconnect = \"127.0.0.1:1\"\ntls-fingerprint = \"AB\"\n")
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"check", "-c", path}, io.Discard, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), ":4: tls-fingerprint:") {
		t.Fatalf("check: exit %d, want 2 naming line 4's key: %s", code, errOut.String())
	}
}

// TestVersionEverywhere: `sockmux version` and every command's --version
// print the version and the Go that built it.
func TestVersionEverywhere(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"connect", "--version"}, {"listen", "--version"}, {"share", "--version"}} {
		var out bytes.Buffer
		code := run(context.Background(), args, &out, io.Discard)
		if code != 0 || !strings.HasPrefix(out.String(), "sockmux "+version+"\n") || !strings.Contains(out.String(), "go1.") {
			t.Errorf("%v: exit %d, output %q", args, code, out.String())
		}
	}
	if got := pseudoCommit("sockmux v0.0.0-20261201231344-8e330cfcb628+dirty"); got != "8e330cfcb628 (modified)" {
		t.Errorf("pseudoCommit = %q", got)
	}
	if got := pseudoCommit("sockmux v1.2.3"); got != "" {
		t.Errorf("pseudoCommit of a tag = %q", got)
	}
}

// TestSSHHabits: -v, -q, -N, -o and -g do what ssh users expect.
func TestSSHHabits(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		// -o sets a flag by its long name: its check runs as the flag's.
		{"-o sets a key", []string{"connect", "-N", "-o", "max-streams=0", "127.0.0.1:1"}, 2, "--max-streams must be at least 1"},
		{"-o typo", []string{"connect", "-o", "lokal=1:h:2", "127.0.0.1:1"}, 2, `did you mean "local"?`},
		{"-o no value", []string{"connect", "-o", "local", "127.0.0.1:1"}, 2, "want KEY=VALUE"},
		{"-o not a key", []string{"connect", "-o", "bogus=true", "127.0.0.1:1"}, 2, "no such key"},
		{"-o of a habit flag", []string{"connect", "-o", "background=true", "127.0.0.1:1"}, 2, "give it as a flag"},
		{"-v and -q", []string{"connect", "-v", "-q", "127.0.0.1:1"}, 2, "-v and -q"},
		// -v logs at debug: the dial attempt of a link that cannot come up.
		{"-v", []string{"connect", "-v", "--max-retries", "0", "--connect-timeout", "50ms", testkit.FreeAddr(t)}, 1, "level=DEBUG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, log := runFor(t, 20*time.Second, tc.args...)
			if code != tc.code || !strings.Contains(log, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, log)
			}
		})
	}
	t.Run("-q", func(t *testing.T) {
		code, log := runFor(t, 20*time.Second, "connect", "-q", "--connect-timeout", "50ms", testkit.FreeAddr(t))
		if code != 1 || strings.Contains(log, "level=INFO") || strings.Contains(log, "level=WARN") || !strings.Contains(log, "connect timeout") {
			t.Fatalf("exit %d, want 1 with errors only:\n%s", code, log)
		}
	})
	t.Run("-g", func(t *testing.T) {
		for _, tc := range []struct {
			gateway bool
			spec    string
			want    string
		}{
			{false, "8080:web:80", "127.0.0.1:8080"},
			{true, "8080:web:80", "0.0.0.0:8080"},
			{true, "[::1]:8080:web:80", "[::1]:8080"},
		} {
			o := options{gateway: tc.gateway, forwards: []string{tc.spec}, dynamic: []string{"1080"}, udpMax: 1, maxStreams: 1, maxBinds: 1,
				openTimeout: time.Second, udpIdle: time.Second, maxSkew: time.Second}
			_, cfg, _, err := o.setup(func() (*slog.Logger, error) { return slog.New(slog.DiscardHandler), nil })
			if err != nil {
				t.Fatal(err)
			}
			wantD := "127.0.0.1:1080"
			if tc.gateway {
				wantD = "0.0.0.0:1080"
			}
			if cfg.Forwards[0].Bind != tc.want || cfg.Dynamic[0] != wantD {
				t.Errorf("-g=%v %s: -L binds %s, -D %s; want %s, %s", tc.gateway, tc.spec, cfg.Forwards[0].Bind, cfg.Dynamic[0], tc.want, wantD)
			}
		}
	})
}

var pidRE = regexp.MustCompile(`running in the background, pid (\d+)`)

// TestBackground: connect -f returns 0 once its link is up and its -L
// listens, and the child it left goes on carrying the forward; one whose
// link cannot come up exits non-zero with the reason.
func TestBackground(t *testing.T) {
	link := testkit.FreeAddr(t)
	runBG(t, "listen", "--drain", "0s", link)
	waitListening(t, link)
	echo := testkit.Echo(t)
	fwd := testkit.FreeAddr(t)
	code, stdout, stderr := runChildOut(t, "connect", "-f", "-N", "-L", fwd+":"+echo, link)
	if code != 0 {
		t.Fatalf("connect -f: exit %d\n%s", code, stderr)
	}
	m := pidRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("connect -f said no pid on stderr:\n%s", stderr)
	}
	pid, _ := strconv.Atoi(m[1])
	if stdout != m[1]+"\n" {
		t.Errorf("connect -f printed %q on stdout, want its pid %s alone", stdout, m[1])
	}
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	})
	// The parent has exited; the forward answers at once, no waiting.
	conn, err := net.Dial("tcp", fwd)
	if err != nil {
		t.Fatalf("the forward of the background connect: %v", err)
	}
	defer conn.Close()
	testkit.EchoRoundTrip(t, conn, 7, 64<<10)

	t.Run("fails", func(t *testing.T) {
		code, stderr := runChild(t, "connect", "-f", "--max-retries", "1", testkit.FreeAddr(t))
		if code != 1 || !strings.Contains(stderr, "attempts failed in a row") {
			t.Fatalf("connect -f to nothing: exit %d, want 1 with the reason:\n%s", code, stderr)
		}
	})
}

// runChild runs "sockmux args..." as a process of its own and returns its
// exit code and stderr. Its stderr is a file, not a pipe: a background
// child it leaves holds it open, and waiting for a pipe's end would wait
// for that child.
func runChild(t testing.TB, args ...string) (int, string) {
	t.Helper()
	code, _, stderr := runChildOut(t, args...)
	return code, stderr
}

// runChildOut is runChild, with the stdout too (a file as well).
func runChildOut(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	ef, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	of, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), "SOCKMUX_TEST_MAIN=1")
	c.Stderr, c.Stdout = ef, of
	err = c.Run()
	eb, _ := os.ReadFile(ef.Name())
	ob, _ := os.ReadFile(of.Name())
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(ob), string(eb)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(ob), string(eb)
	}
	t.Fatalf("sockmux %v: %v", args, err)
	return 0, "", ""
}

// TestExamplesPassCheck: the shipped config files validate as they are,
// from any folder (their relative paths are the file's), and the
// connector pins the fingerprint check prints for the listener.
func TestExamplesPassCheck(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.toml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	printed := map[string]string{}
	for _, f := range files {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"check", "-c", f}, &out, &errOut); code != 0 {
			t.Fatalf("check %s: exit %d: %s", f, code, errOut.String())
		}
		printed[filepath.Base(f)] = out.String()
	}
	fp := regexp.MustCompile(`certificate fingerprint ([0-9a-f]{64}) \(peers pin it`).FindStringSubmatch(printed["hostX.toml"])
	if fp == nil {
		t.Fatalf("check of hostX.toml prints no fingerprint:\n%s", printed["hostX.toml"])
	}
	if !strings.Contains(printed["hostY.toml"], "pins the server certificate fingerprint "+fp[1]) {
		t.Fatalf("hostY.toml does not pin %s:\n%s", fp[1], printed["hostY.toml"])
	}
	if !strings.Contains(printed["hostX.toml"], `share "console": listen 127.0.0.1:7001`) {
		t.Fatalf("check of hostX.toml leaves out its [[share]]:\n%s", printed["hostX.toml"])
	}
}

// TestReadmeTwoHostExample runs the README's first two-host example as it
// is written, on one machine: hostX is 127.0.0.1, each side's forward and
// the link get free ports, and the telnet servers are an echo server.
func TestReadmeTwoHostExample(t *testing.T) {
	testkit.CheckLeaks(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	section = section[strings.Index(section, "## A two-host example"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	cmdOf := func(prompt string) []string {
		m := regexp.MustCompile(`(?m)^` + prompt + `\$ sockmux ((?:listen|connect) .*)$`).FindStringSubmatch(section)
		if m == nil {
			t.Fatalf("README's two-host example has no %s$ sockmux listen/connect line", prompt)
		}
		return strings.Fields(m[1])
	}
	key := keyFile(t, "a key made as the README says, 32 bytes and more")
	// The example listens on 0.0.0.0: its ports must be free on every
	// address, not only on 127.0.0.1 (other tests bind 127.0.0.11 and up).
	link, echo := testkit.FreeWildcardAddr(t), testkit.Echo(t)
	_, linkPort, _ := net.SplitHostPort(link)
	_, echoPort, _ := net.SplitHostPort(echo)
	fwd := map[string]string{"hostX": testkit.FreeWildcardAddr(t), "hostY": testkit.FreeWildcardAddr(t)}
	for _, host := range []string{"hostX", "hostY"} {
		_, fwdPort, _ := net.SplitHostPort(fwd[host])
		args := cmdOf(host)
		for i, a := range args {
			a = strings.ReplaceAll(a, "sockmux.key", key)
			a = strings.ReplaceAll(a, ":9023:", ":"+fwdPort+":")
			a = strings.ReplaceAll(a, "127.0.0.1:23", "127.0.0.1:"+echoPort)
			a = strings.ReplaceAll(a, "hostX:9000", "127.0.0.1:"+linkPort)
			a = strings.ReplaceAll(a, "0.0.0.0:9000", "0.0.0.0:"+linkPort)
			args[i] = a
		}
		log := runBG(t, append(args[:1:1], append([]string{"--drain", "0s"}, args[1:]...)...)...)
		if host == "hostX" {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("hostX's log:\n%s", log.String())
				}
			})
			waitListening(t, link)
		} else {
			waitLog(t, log, `msg="link up"`)
		}
	}
	for host, addr := range fwd {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("%s's forward: %v", host, err)
		}
		testkit.EchoRoundTrip(t, conn, 3, 256<<10)
		conn.Close()
	}
}

// TestManPagesUpToDate: docs/man is what `sockmux man` makes of the
// commands as they are now (but the date line).
func TestManPagesUpToDate(t *testing.T) {
	dir := t.TempDir()
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"man", dir}, io.Discard, &errOut); code != 0 {
		t.Fatalf("sockmux man: exit %d: %s", code, errOut.String())
	}
	strip := func(b []byte) string { return regexp.MustCompile(`(?m)^\.TH .*$`).ReplaceAllString(string(b), "") }
	made, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	shipped, _ := filepath.Glob("../../docs/man/*.1")
	if len(made) < 10 || len(made) != len(shipped) {
		t.Fatalf("sockmux man made %d pages, docs/man has %d: run 'go run ./cmd/sockmux man docs/man'", len(made), len(shipped))
	}
	for _, m := range made {
		want, _ := os.ReadFile(m)
		got, err := os.ReadFile(filepath.Join("../../docs/man", filepath.Base(m)))
		if err != nil || strip(got) != strip(want) {
			t.Errorf("docs/man/%s is out of date: run 'go run ./cmd/sockmux man docs/man'", filepath.Base(m))
		}
	}
	page, _ := os.ReadFile(filepath.Join(dir, "sockmux-connect.1"))
	if !strings.Contains(string(page), "tls-fingerprint") || !strings.Contains(string(page), ".SH EXAMPLE") {
		t.Errorf("sockmux-connect.1 lacks its flags or examples")
	}
}

// TestCompletion: the shells' completion scripts come out of the commands.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		if code := run(context.Background(), []string{"completion", sh}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "sockmux") {
			t.Errorf("completion %s: exit %d, %d bytes", sh, code, out.Len())
		}
	}
}
