// Package dashboard serves sockmux's live dashboard: a page at / that
// shows, for every link, its peers (state, round trip, streams open), each
// peer's carriers (round trip, bytes, stalls), the forwards with their
// connection counts, the shared upstreams with their clients, and a chart
// of each link's throughput over the last minutes, updated once a second
// without reloading.
//
// The page (index.html, app.js, style.css, embedded in the binary: no
// CDN, no build step) polls GET /api/status, which answers
//
//	{"time": ..., "every_ms": 1000, "samples": 300,
//	 "report": <what Options.Status returns: sockmux status --json's report>,
//	 "history": {"LINK": [[unix_ms, in_bytes_per_s, out_bytes_per_s], ...]}}
//
// The history is sampled here, not by the page, so it is there when the
// page is opened: every Options.Every the Dashboard reads each link's byte
// counters (Options.Counters, cheap atomic loads) and keeps the rate since
// the last reading in a ring of Options.Samples per link. Memory is bounded
// by links × Samples; a link that is gone from the counters loses its ring,
// and counters that went down (a link restarted by a reload) start a new
// baseline rather than a negative rate.
//
// The dashboard shows what sockmux status shows, to whoever can reach the
// metrics address: bind that to loopback or a trusted network.
package dashboard

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"sort"
	"sync"
	"time"
)

//go:embed assets
var assets embed.FS

// Counter is one link's byte counters, as sampled for its chart.
type Counter struct {
	Name    string
	In, Out int64 // bytes received from and sent to its peers, since it started
}

// Options configure a Dashboard.
type Options struct {
	// Status is the report the page shows, encoded as JSON (sockmux's
	// status report). It is called once per request to /api/status.
	Status func() any
	// Counters are the links' byte counters, read every Every.
	Counters func() []Counter
	// Every is the sampling interval (default 1 s); Samples the samples
	// kept per link (default 300: five minutes).
	Every   time.Duration
	Samples int
}

// Dashboard is the page, its API and the sampler behind its charts.
type Dashboard struct {
	opts Options
	mux  *http.ServeMux

	mu    sync.Mutex
	rings map[string]*ring

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New starts sampling; Close stops it.
func New(o Options) *Dashboard {
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.Samples <= 0 {
		o.Samples = 300
	}
	d := &Dashboard{opts: o, rings: make(map[string]*ring), stop: make(chan struct{}), done: make(chan struct{})}
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	d.mux = http.NewServeMux()
	d.mux.HandleFunc("GET /api/status", d.apiStatus)
	d.mux.Handle("GET /{$}", files)
	for _, name := range []string{"app.js", "style.css"} {
		d.mux.Handle("GET /"+name, files)
	}
	d.sample(time.Now()) // the baseline, so the first rate comes one interval from now
	go d.run()
	return d
}

// Close stops the sampler and waits for it.
func (d *Dashboard) Close() {
	d.once.Do(func() { close(d.stop) })
	<-d.done
}

// ServeHTTP serves the page at /, its assets and /api/status.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Everything the page loads is its own: no inline script, no other origin.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) run() {
	defer close(d.done)
	t := time.NewTicker(d.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			d.sample(now)
		}
	}
}

// sample reads every link's counters once.
func (d *Dashboard) sample(now time.Time) {
	if d.opts.Counters == nil {
		return
	}
	cs := d.opts.Counters()
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		seen[c.Name] = true
		r := d.rings[c.Name]
		if r == nil {
			r = newRing(d.opts.Samples)
			d.rings[c.Name] = r
		}
		r.add(now, c.In, c.Out)
	}
	for name := range d.rings {
		if !seen[name] {
			delete(d.rings, name)
		}
	}
}

// history is every link's samples, oldest first.
func (d *Dashboard) history() map[string][][3]float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := make(map[string][][3]float64, len(d.rings))
	names := make([]string, 0, len(d.rings))
	for name := range d.rings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h[name] = d.rings[name].points()
	}
	return h
}

// apiResponse is what GET /api/status answers.
type apiResponse struct {
	Time    time.Time               `json:"time"`
	EveryMS int64                   `json:"every_ms"`
	Samples int                     `json:"samples"`
	Report  any                     `json:"report"`
	History map[string][][3]float64 `json:"history"`
}

func (d *Dashboard) apiStatus(w http.ResponseWriter, r *http.Request) {
	resp := apiResponse{Time: time.Now(), EveryMS: d.opts.Every.Milliseconds(), Samples: d.opts.Samples, History: d.history()}
	if d.opts.Status != nil {
		resp.Report = d.opts.Status()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(resp)
}
