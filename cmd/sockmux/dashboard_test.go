package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/internal/testkit"
)

// TestMetricsRuntimeAndDashboard: /metrics has the Go runtime's and the
// process's collectors beside sockmux's own; the metrics address serves
// the dashboard's page and its API, whose report has each carrier of a
// striped link; and closing stops the dashboard's sampler (the leak
// check).
func TestMetricsRuntimeAndDashboard(t *testing.T) {
	testkit.CheckLeaks(t)
	echo := testkit.Echo(t)
	link, fwd, metricsAddr := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	control := filepath.Join(t.TempDir(), "ctl.sock")
	d := startDaemon(t, fmt.Sprintf(`control = %q
metrics = %q
[[link]]
name = "west"
listen = %q
[[link]]
name = "east"
connect = %q
carriers = 2
local = [%q]
`, control, metricsAddr, link, link, fwd+":"+echo))
	waitPeers(t, d, map[string]int{"east": 2, "west": 2})
	c, err := net.Dial("tcp", fwd)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1 << 20
	testkit.EchoRoundTrip(t, c, 3, n)
	c.Close()
	if v := metricValue(t, metricsAddr, "go_goroutines"); v < 1 {
		t.Errorf("go_goroutines %v", v)
	}
	if v := metricValue(t, metricsAddr, "process_resident_memory_bytes"); v < 1<<20 {
		t.Errorf("process_resident_memory_bytes %v", v)
	}
	metricValue(t, metricsAddr, `sockmux_bytes_sent_total{link="east"}`) // sockmux's own are still there

	page := httpGet(t, "http://"+metricsAddr+"/")
	if !strings.Contains(page, `<script src="app.js"`) {
		t.Fatalf("/ is not the dashboard:\n%s", page)
	}
	if js := httpGet(t, "http://"+metricsAddr+"/app.js"); !strings.Contains(js, "api/status") {
		t.Fatal("/app.js is not the dashboard's script")
	}
	var api struct {
		EveryMS int64 `json:"every_ms"`
		Report  report
		History map[string][][3]float64
	}
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+metricsAddr+"/api/status")), &api); err != nil {
		t.Fatal(err)
	}
	if api.EveryMS != 1000 || len(api.Report.Links) != 2 || api.Report.Links[0].Name != "east" {
		t.Fatalf("/api/status: %+v", api)
	}
	// Each carrier: its address, its round trip (the PING sent when it
	// joined), and the bytes put on it and that came on it.
	peers := api.Report.Links[0].Status.Links
	if len(peers) != 1 || len(peers[0].PerCarrier) != 2 {
		t.Fatalf("east's carriers: %+v", peers)
	}
	var sent, in uint64
	for _, pc := range peers[0].PerCarrier {
		if pc.Local == "" || pc.RTT <= 0 || pc.Stalled {
			t.Errorf("carrier %+v", pc)
		}
		sent, in = sent+pc.BytesSent, in+pc.BytesIn
	}
	if sent < n || in < n {
		t.Errorf("carriers carried %d bytes out, %d in, for an echo of %d", sent, in, n)
	}
}

// waitPeers waits until each link named has one peer, up, with the
// carriers given, and returns them.
func waitPeers(t *testing.T, d *daemonUnderTest, carriers map[string]int) map[string]sockmux.LinkStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, got := d.status(t), map[string]sockmux.LinkStatus{}
		for name, n := range carriers {
			if ps := linkOf(t, r, name).Status.Links; len(ps) == 1 && ps[0].Up && ps[0].Carriers == n && len(ps[0].PerCarrier) == n {
				got[name] = ps[0]
			}
		}
		if len(got) == len(carriers) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("links not up with %v carriers: %+v", carriers, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}

// TestDashboardInChromium opens the dashboard of a running daemon in a
// real headless Chromium: the rendered page shows the peers' addresses,
// the forwards and the share's clients, and the chart of the link that
// carries a transfer moves while it runs (its data, and its pixels, change
// from one update to the next, with a rate above zero). It takes a
// screenshot; with SOCKMUX_DASHBOARD_PNG=FILE it first lets the chart
// fill for SOCKMUX_DASHBOARD_SECONDS (default 150) with a varying
// transfer and writes the screenshot there (how docs/dashboard.png is
// made).
func TestDashboardInChromium(t *testing.T) {
	chromium := testkit.NeedTool(t, "chromium")
	testkit.CheckLeaks(t)
	shotPath := os.Getenv("SOCKMUX_DASHBOARD_PNG")
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("dashboard key, long enough"), 0o600)
	echo := testkit.Echo(t)
	upstream := testkit.Serve(t, func(c net.Conn) {
		c.Write([]byte("welcome to the MUD\n"))
		io.Copy(c, c) // what a client says comes back to every client
	})
	sink := testkit.Serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	link, fwdW, fwdE, fwdS, shareAddr, metricsAddr := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	d := startDaemon(t, fmt.Sprintf(`control = %q
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
carriers = 2
local = [%q, %q]

[[share]]
name = "mud"
listen = %q
upstream = %q
replay = "4KiB"
`, filepath.Join(dir, "ctl.sock"), metricsAddr, link, key, fwdW+":"+echo, link, key, fwdE+":"+echo, fwdS+":"+sink, shareAddr, "tcp://"+upstream))
	waitLog(t, d.log, `msg="upstream up"`)
	peers := waitPeers(t, d, map[string]int{"east": 2, "west": 2})
	eastPeer, westPeer := peers["east"].Peer, peers["west"].Peer
	for i := range 2 { // two clients on the share, one of which talks
		c, err := net.Dial("tcp", shareAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go io.Copy(io.Discard, c)
		if i == 1 {
			c.Write([]byte("look\n"))
		}
	}

	// A transfer through east's forward and back, paced (the browser needs
	// the CPU too); for the screenshot its rate rises and falls.
	rate := func(time.Duration) float64 { return 24 << 20 }
	if shotPath != "" {
		rate = func(e time.Duration) float64 {
			s := e.Seconds()
			return (1.5 + math.Sin(s/11) + 0.3*math.Sin(s/2.3)) * (8 << 20)
		}
		// And an upload, so that the two ways differ.
		stopUp := paced(t, fwdS, func(e time.Duration) float64 {
			return (1.2 + math.Cos(e.Seconds()/13)) * (6 << 20)
		})
		defer stopUp()
	}
	stop := paced(t, fwdE, rate)
	defer stop()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+metricsAddr+"/")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	wait := func(what, expr string, timeout time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, text)
		}
	}

	// The page shows every peer, carrier, forward and share client.
	for _, s := range []string{eastPeer, westPeer, fwdE, fwdW, shareAddr, "carrier 2 · "} {
		wait("the page to show "+s, fmt.Sprintf(`document.body.innerText.includes(%q)`, s), 15*time.Second)
	}
	wait("two share clients", `document.querySelectorAll('[data-share="mud"] table.clients tbody tr').length === 2`, 15*time.Second)

	// The chart moves: twice, a new sample with bytes flowing is drawn.
	const chart = `document.querySelector('canvas[data-link="east"]')`
	type chartState struct {
		Samples  int     `json:"samples"`
		LastTime float64 `json:"t"`
		LastOut  float64 `json:"out"`
		Image    string  `json:"img"`
	}
	read := func() chartState {
		t.Helper()
		st, err := chromedp.Run(ctx, chromedp.Evaluate[chartState](`(c => ({samples: +c.dataset.samples || 0, t: +c.dataset.lastTime || 0,
			out: +c.dataset.lastOut || 0, img: c.toDataURL()}))(`+chart+`)`))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	prev := read()
	for i := range 2 {
		wait(fmt.Sprintf("chart update %d", i+1), fmt.Sprintf(`(c => +c.dataset.lastTime > %v && +c.dataset.lastOut > 1<<20)(%s)`, prev.LastTime, chart), 15*time.Second)
		cur := read()
		if cur.Image == prev.Image {
			t.Errorf("chart update %d: the data changed (%+v → %+v) but not the picture", i+1, prev.LastTime, cur.LastTime)
		}
		prev = cur
	}

	if shotPath != "" {
		secs := 150.0
		if s := os.Getenv("SOCKMUX_DASHBOARD_SECONDS"); s != "" {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				secs = v
			}
		}
		wait("the chart to fill", fmt.Sprintf(`+%s.dataset.samples >= %d`, chart, int(secs)), time.Duration(secs+30)*time.Second)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() < 800 {
		t.Fatalf("screenshot: %v, %v", err, img)
	}
	out := filepath.Join(t.TempDir(), "dashboard.png")
	if shotPath != "" {
		out = shotPath
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%dx%d)", out, img.Bounds().Dx(), img.Bounds().Dy())
}

// paced sends to addr at about rate(elapsed) bytes a second, and reads
// what comes back (an echo's answer), until the returned stop is called.
func paced(t *testing.T, addr string, rate func(time.Duration) float64) (stop func()) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(io.Discard, c)
	}()
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		start := time.Now()
		next := start // when the next chunk is due
		for {
			select {
			case <-quit:
				c.(*net.TCPConn).CloseWrite()
				return
			default:
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
			r := max(rate(time.Since(start)), 64<<10)
			next = next.Add(time.Duration(float64(len(buf)) / r * float64(time.Second)))
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			} else if d < -100*time.Millisecond {
				next = time.Now() // behind: no burst to catch up
			}
		}
	}()
	var stopped bool
	return func() {
		if stopped {
			return
		}
		stopped = true
		close(quit)
		<-done
		select {
		case <-read:
		case <-time.After(10 * time.Second):
		}
		c.Close()
		<-read
	}
}
