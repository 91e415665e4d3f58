package testkit

// Real outside servers a test starts on loopback, with a configuration it
// writes: nginx as a WebSocket reverse proxy, tinyproxy as an HTTP
// CONNECT proxy, Dante as a SOCKS5 proxy, etcd for the cluster's etcd
// provider. Each runs as a process group of
// its own, killed when the test ends.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/procgroup"
)

// outside is a running outside server.
type outside struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startOutside runs path with args in a process group of its own and
// waits until addr accepts connections; the group is killed at cleanup,
// and its output logged if the test failed.
func startOutside(t testing.TB, name, addr, path string, args ...string) *outside {
	t.Helper()
	o := &outside{name: name, out: &lockedBuffer{}}
	o.cmd = exec.Command(path, args...)
	o.cmd.Stdout, o.cmd.Stderr = o.out, o.out
	if err := procgroup.Start(o.cmd); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = o.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		procgroup.Kill(o.cmd)
		<-exited
		if t.Failed() {
			t.Logf("%s's output:\n%s", name, o.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return o
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before listening on %s:\n%s", name, addr, o.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening on %s after 15 s:\n%s", name, addr, o.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Nginx starts nginx (Debian's nginx-light) on a free loopback port as a
// reverse proxy of WebSocket upgrades: each location in locations is
// passed to backend (host:port) with the Upgrade and Connection headers,
// unbuffered. It returns nginx's host:port and the path of its access log
// (one line per request, with its status).
func Nginx(t testing.TB, backend string, locations ...string) (addr, accessLog string) {
	t.Helper()
	bin := NeedTool(t, "nginx")
	dir := t.TempDir()
	addr = FreeAddr(t)
	accessLog = filepath.Join(dir, "access.log")
	var locs strings.Builder
	for _, l := range locations {
		fmt.Fprintf(&locs, `
		location %s {
			proxy_pass http://%s;
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header Host $host;
			proxy_buffering off;
			proxy_request_buffering off;
			proxy_read_timeout 1h;
			proxy_send_timeout 1h;
		}
`, l, backend)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
	access_log %[2]s;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	map $http_upgrade $connection_upgrade {
		default upgrade;
		'' close;
	}
	server {
		listen %[3]s;
		%[4]s
		location / {
			return 418;
		}
	}
}
`, dir, accessLog, addr, locs.String())
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startOutside(t, "nginx", addr, bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path)
	return addr, accessLog
}

// Tinyproxy starts tinyproxy on a free loopback port as an HTTP CONNECT
// proxy that wants Basic authentication as user:pass (none when user is
// empty) and, when connectPorts are given, connects to those ports only
// (others get its 403). It returns tinyproxy's host:port.
func Tinyproxy(t testing.TB, user, pass string, connectPorts ...string) string {
	t.Helper()
	bin := NeedTool(t, "tinyproxy")
	dir := t.TempDir()
	addr := FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	var conf strings.Builder
	fmt.Fprintf(&conf, "Port %s\nListen %s\nTimeout 600\nMaxClients 64\nAllow 127.0.0.1\nLogLevel Info\n", port, host)
	if user != "" {
		fmt.Fprintf(&conf, "BasicAuth %s %s\n", user, pass)
	}
	for _, p := range connectPorts {
		fmt.Fprintf(&conf, "ConnectPort %s\n", p)
	}
	path := filepath.Join(dir, "tinyproxy.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	startOutside(t, "tinyproxy", addr, bin, "-d", "-c", path)
	return addr
}

// Dante's test account: the user and password its username method
// accepts, and the password's SHA-512 crypt(3) for the shadow file.
const (
	DanteUser     = "sockmuxtest"
	DantePassword = "dante-secret"
	danteHash     = "$6$sockmuxsalt$COXK.iT6Ip5VyTvhP/ur3X1I4drnhbBA4MWB/OxP9n3ZcI.BjImgBGMoBUCLfZEIatSvyEiF1ubWW.03XLGXd."
)

// Danted starts Dante's SOCKS5 server (Debian's dante-server) on a free
// loopback port, CONNECT only, with the username/password method against
// the system's password files. The system's are not touched: danted runs
// in a mount namespace of its own where copies of /etc/passwd and
// /etc/shadow with DanteUser added are bound over them. That needs root
// (CAP_SYS_ADMIN), as danted's reading the shadow file does; without it
// the test is skipped. It returns danted's host:port.
func Danted(t testing.TB) string {
	t.Helper()
	bin := NeedTool(t, "danted")
	unshare := NeedTool(t, "unshare")
	if os.Geteuid() != 0 {
		t.Skip("danted's username method reads the shadow file, and the test binds its own over it: both need root")
	}
	dir := t.TempDir()
	addr := FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	for _, f := range []struct{ name, line string }{
		{"passwd", DanteUser + ":x:64999:64999::/nonexistent:/usr/sbin/nologin"},
		{"shadow", DanteUser + ":" + danteHash + ":19000:0:99999:7:::"},
	} {
		sys, err := os.ReadFile("/etc/" + f.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(sys) > 0 && sys[len(sys)-1] != '\n' {
			sys = append(sys, '\n')
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), append(sys, f.line+"\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`logoutput: stderr
internal: %[1]s port = %[2]s
external: %[1]s
clientmethod: none
socksmethod: username
user.privileged: root
user.unprivileged: nobody
client pass {
	from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
	from: 127.0.0.0/8 to: 0.0.0.0/0
	command: connect
	socksmethod: username
	log: connect error
}
`, host, port)
	path := filepath.Join(dir, "danted.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("mount --bind %s /etc/passwd && mount --bind %s /etc/shadow && exec %s -f %s -N 1",
		filepath.Join(dir, "passwd"), filepath.Join(dir, "shadow"), bin, path)
	startOutside(t, "danted", addr, unshare, "--mount", "--propagation", "private", "sh", "-c", script)
	return addr
}

// Etcd starts an etcd server (Debian's etcd-server) of one node on free
// loopback ports, its data in a temporary directory, and returns its
// client address (host:port).
func Etcd(t testing.TB) string {
	t.Helper()
	bin := NeedTool(t, "etcd")
	client, peer := FreeAddr(t), FreeAddr(t)
	startOutside(t, "etcd", client, bin,
		"--name", "test", "--data-dir", t.TempDir(),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "test=http://"+peer, "--log-level", "warn")
	return client
}
