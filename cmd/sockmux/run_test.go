package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/internal/testkit"
)

// daemonUnderTest runs "sockmux run" on a config file until the test ends.
type daemonUnderTest struct {
	path, control string
	log           *syncBuffer
}

func startDaemon(t *testing.T, text string) *daemonUnderTest {
	t.Helper()
	d := &daemonUnderTest{log: &syncBuffer{}}
	d.path = writeConfig(t, text)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "-c", d.path}, io.Discard, d.log) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("run exited %d:\n%s", code, d.log.String())
		}
	})
	waitLog(t, d.log, `msg="control socket"`)
	cfg, err := loadConfig(d.path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d.control = cfg.control
	return d
}

func (d *daemonUnderTest) status(t *testing.T) report {
	t.Helper()
	r, err := controlCall(d.control, "status")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func linkOf(t *testing.T, r report, name string) linkReport {
	for _, l := range r.Links {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("status has no link %q", name)
	return linkReport{}
}

func udpPort(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// TestRunConfig: two links from one file, with every forward kind, carry
// traffic; status and metrics match a transfer the test made; the control
// socket is private.
func TestRunConfig(t *testing.T) {
	testkit.CheckLeaks(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("file key, sixteen bytes long"), 0o600)
	echo, udpEcho := testkit.Echo(t), testkit.NewUDPEcho(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "web") }))
	defer web.Close()
	link, fwdW, fwdE, remE, dynE, metricsAddr := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	udpE := udpPort(t)
	_, udpEPort, _ := net.SplitHostPort(udpE)
	control := filepath.Join(dir, "ctl.sock")
	d := startDaemon(t, fmt.Sprintf(`# two links in one process: west listens, east dials it
control = %q
metrics = %q

[[link]]
name = "west"
listen = %q
key-file = %q
local = [%q]

[[link]]
name = "east"
connect = %q
key-file = %q
local = [%q, %q]
remote = [%q]
dynamic = [%q]
keepalive = "50ms"
`, control, metricsAddr, link, key, fwdW+":"+echo, link, key, fwdE+":"+echo, "127.0.0.1:"+udpEPort+"/udp:"+udpEcho.Addr, remE+":"+echo, dynE))
	waitLog(t, d.log, `msg="reverse forward listening" link=east`)

	// Every forward kind carries traffic.
	for _, addr := range []string{fwdW, fwdE, remE} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		testkit.EchoRoundTrip(t, c, 1, 1<<20)
		c.Close()
	}
	sd, _ := proxy.SOCKS5("tcp", dynE, nil, proxy.Direct)
	hc := &http.Client{Transport: &http.Transport{DialContext: sd.(proxy.ContextDialer).DialContext}, Timeout: 10 * time.Second}
	resp, err := hc.Get(web.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	hc.CloseIdleConnections()
	if string(b) != "web" {
		t.Fatalf("-D got %q", b)
	}
	ua, _ := net.ResolveUDPAddr("udp", udpE)
	uc, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	udpEchoOnce(t, uc, []byte("datagram"))

	// Status and metrics match a transfer made now, to the byte: they
	// count stream payload, not frames.
	before := linkOf(t, d.status(t), "east").Status
	const n = 3 << 20
	c, err := net.Dial("tcp", fwdE)
	if err != nil {
		t.Fatal(err)
	}
	testkit.EchoRoundTrip(t, c, 2, n)
	c.Close()
	east := linkOf(t, d.status(t), "east")
	if out, in := east.Status.BytesOut-before.BytesOut, east.Status.BytesIn-before.BytesIn; out != n || in != n {
		t.Errorf("status: %d bytes out, %d in for an echo of %d", out, in, n)
	}
	if len(east.Status.Links) != 1 || !east.Status.Links[0].Up || !east.Status.Links[0].Authenticated {
		t.Fatalf("status of east's link: %+v", east.Status.Links)
	}
	// Each side's status shows the -R: east what it asked and the answer,
	// west where it listens for its peer; neither shows a stale RTT.
	if got, want := east.Status.Links[0].Remotes, []sockmux.RemoteStatus{{Bind: remE, Target: echo, Listening: remE}}; !slices.Equal(got, want) {
		t.Errorf("east's -R in status: %+v, want %+v", got, want)
	}
	west := linkOf(t, d.status(t), "west").Status
	if w := west.Links; len(w) != 1 || !slices.Equal(w[0].Reverse, []string{remE}) {
		t.Errorf("west's listeners for its peer in status: %+v, want [%s]", w, remE)
	}
	// The -R's connections count where it listens, with the kinds told
	// apart (the ones above: two through the -R).
	var kinds []string
	for _, f := range west.Forwards {
		kinds = append(kinds, f.Kind)
		if f.Kind == "peer-remote" && (f.Listen != remE || f.Conns != 1) {
			t.Errorf("west's forward for its peer's -R: %+v, want %s with 1 connection", f, remE)
		}
	}
	if !slices.Contains(kinds, "peer-remote") || !slices.Contains(kinds, "local") {
		t.Errorf("west's forwards in status: %+v, want its -L and its peer's -R", west.Forwards)
	}
	if got := metricValue(t, metricsAddr, `sockmux_bytes_sent_total{link="east"}`); got != float64(east.Status.BytesOut) {
		t.Errorf("metrics: %v bytes sent, status %d", got, east.Status.BytesOut)
	}

	// The control socket is this user's alone.
	fi, err := os.Stat(control)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("control socket mode %v, want a socket with 0600", fi.Mode())
	}
	if os.Getuid() == 0 {
		// As another user, connecting is refused by the file mode.
		err := asNobody(t, control)
		if !errors.Is(err, syscall.EACCES) {
			t.Fatalf("another user's connect: %v, want permission denied", err)
		}
	}
	var out strings.Builder
	if code := run(context.Background(), []string{"status", "--control", control}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "link east") {
		t.Fatalf("status: exit %d\n%s", code, out.String())
	}
	for _, want := range []string{"-R " + remE, "listening at " + remE, "listening for the peer at " + remE} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("sockmux status has no %q:\n%s", want, out.String())
		}
	}
}

// udpEchoOnce sends a datagram until its echo comes back whole.
func udpEchoOnce(t *testing.T, c *net.UDPConn, msg []byte) {
	buf := make([]byte, 2048)
	for range 40 {
		c.Write(msg)
		c.SetReadDeadline(time.Now().Add(250 * time.Millisecond)) // when to send again
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == string(msg) {
			return
		}
	}
	t.Fatal("no UDP echo")
}

// metricValue scrapes one sample from /metrics.
func metricValue(t *testing.T, addr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", sample)
	return 0
}

// asNobody connects to a unix socket as user nobody, from a child process.
func asNobody(t *testing.T, path string) error {
	t.Helper()
	c, err := syscallConnectAs(path, 65534)
	if c != nil {
		c.Close()
	}
	return err
}

// TestReload: forwards added and removed by a reload take effect at once,
// a transfer on a forward that did not change completes intact across it,
// and a file that no longer validates is rejected, leaving things as they
// were.
func TestReload(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	link, a, b, c := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	control := filepath.Join(t.TempDir(), "ctl.sock")
	conf := func(locals ...string) string {
		q := make([]string, len(locals))
		for i, l := range locals {
			q[i] = strconv.Quote(l + ":" + echo)
		}
		return fmt.Sprintf("control = %q\n[[link]]\nname = \"west\"\nlisten = %q\n[[link]]\nname = \"east\"\nconnect = %q\nlocal = [%s]\n",
			control, link, link, strings.Join(q, ", "))
	}
	d := startDaemon(t, conf(a, c))
	waitLog(t, d.log, `msg="link up" link=east`)

	// A transfer on forward a, half sent before the reload, half after.
	conn, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := testkit.Payload(9, 8<<20)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		got <- b
	}()
	if _, err := conn.Write(payload[:4<<20]); err != nil {
		t.Fatal(err)
	}

	// Reload: c goes, b comes, a stays.
	os.WriteFile(d.path, []byte(conf(a, b)), 0o600)
	if _, err := controlCall(control, "reload"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(payload[4<<20:]); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	if echoed := <-got; string(echoed) != string(payload) {
		t.Fatalf("the transfer across the reload came back as %d bytes, want %d intact", len(echoed), len(payload))
	}
	nb, err := net.Dial("tcp", b)
	if err != nil {
		t.Fatalf("the added forward: %v", err)
	}
	testkit.EchoRoundTrip(t, nb, 3, 1<<20)
	nb.Close()
	if nc, err := net.Dial("tcp", c); err == nil {
		nc.Close()
		t.Fatal("the removed forward still accepts")
	}

	// A bad file is rejected; the running forwards stay.
	os.WriteFile(d.path, []byte(conf(a, b)+"typo = 1\n"), 0o600)
	if _, err := controlCall(control, "reload"); err == nil {
		t.Fatal("a bad file was accepted on reload")
	}
	na, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	testkit.EchoRoundTrip(t, na, 4, 1<<20)
	na.Close()
}

// TestRunShare: a [[share]] in the config comes up, and status and metrics
// show its upstream, clients and drops.
func TestRunShare(t *testing.T) {
	testkit.CheckLeaks(t)
	upstream := testkit.Serve(t, func(c net.Conn) {
		c.Write([]byte("welcome\n"))
		io.Copy(io.Discard, c)
	})
	listen, metricsAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	control := filepath.Join(t.TempDir(), "ctl.sock")
	d := startDaemon(t, fmt.Sprintf("control = %q\nmetrics = %q\n[[share]]\nname = \"mud\"\nlisten = %q\nupstream = %q\nreplay = \"64\"\n",
		control, metricsAddr, listen, "tcp://"+upstream))
	waitLog(t, d.log, `msg="upstream up"`)
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, len("welcome\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "welcome\n" {
		t.Fatalf("replay %q, %v", got, err)
	}
	r := d.status(t)
	if len(r.Shares) != 1 || r.Shares[0].Name != "mud" || !r.Shares[0].Stats.UpstreamUp || len(r.Shares[0].Stats.Clients) != 1 ||
		r.Shares[0].Stats.FromUpstream != int64(len("welcome\n")) {
		t.Fatalf("status of the share: %+v", r.Shares)
	}
	if v := metricValue(t, metricsAddr, `sockmux_share_clients{share="mud"}`); v != 1 {
		t.Fatalf("metrics: %v clients", v)
	}
}
