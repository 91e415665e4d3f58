package dashboard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRing: rates from counter deltas over the interval, oldest first, at
// most the ring's size; a first reading and counters that went down only
// set the baseline.
func TestRing(t *testing.T) {
	r := newRing(3)
	t0 := time.Unix(1000, 0)
	r.add(t0, 100, 1000)
	if p := r.points(); len(p) != 0 {
		t.Fatalf("a baseline made samples: %v", p)
	}
	r.add(t0.Add(2*time.Second), 300, 1000) // 100 B/s in, 0 out
	r.add(t0.Add(3*time.Second), 400, 1500)
	want := [][3]float64{{1002000, 100, 0}, {1003000, 100, 500}}
	if p := r.points(); !equal(p, want) {
		t.Fatalf("points %v, want %v", p, want)
	}
	r.add(t0.Add(4*time.Second), 10, 20) // restarted: a new baseline, no sample
	r.add(t0.Add(5*time.Second), 30, 20)
	r.add(t0.Add(6*time.Second), 30, 60)
	want = [][3]float64{{1003000, 100, 500}, {1005000, 20, 0}, {1006000, 0, 40}}
	if p := r.points(); !equal(p, want) {
		t.Fatalf("after the wrap: %v, want %v", p, want)
	}
}

func equal(a, b [][3]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSampleForgetsLinks: a link gone from the counters loses its ring, so
// memory is bounded by the links that run.
func TestSampleForgetsLinks(t *testing.T) {
	var mu sync.Mutex
	cs := []Counter{{Name: "a"}, {Name: "b"}}
	d := New(Options{Every: time.Hour, Samples: 4, Counters: func() []Counter {
		mu.Lock()
		defer mu.Unlock()
		return cs
	}})
	defer d.Close()
	now := time.Now()
	for i := range 10 {
		mu.Lock()
		cs = []Counter{{Name: "a", In: int64(i) * 10}, {Name: "b", Out: int64(i)}}
		mu.Unlock()
		d.sample(now.Add(time.Duration(i+1) * time.Second))
	}
	h := d.history()
	if len(h["a"]) != 4 || len(h["b"]) != 4 || h["a"][3][1] != 10 || h["b"][3][2] != 1 {
		t.Fatalf("history %v", h)
	}
	mu.Lock()
	cs = cs[:1]
	mu.Unlock()
	d.sample(now.Add(20 * time.Second))
	if h := d.history(); len(h) != 1 || h["b"] != nil {
		t.Fatalf("b is gone but kept: %v", h)
	}
}

// TestHandler: the page, its assets and the API are served, with a
// policy that lets the page load nothing from elsewhere; other paths are
// not found.
func TestHandler(t *testing.T) {
	d := New(Options{
		Status:   func() any { return map[string]any{"links": []any{map[string]any{"name": "x"}}} },
		Counters: func() []Counter { return []Counter{{Name: "x", In: 5}} },
	})
	defer d.Close()
	srv := httptest.NewServer(d)
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for path, want := range map[string]string{"/": "<canvas", "/app.js": "drawChart", "/style.css": "--in"} {
		resp, body := get(path)
		if path == "/" {
			want = `src="app.js"`
		}
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %s, body lacks %q", path, resp.Status, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	resp, body := get("/api/status")
	var api apiResponse
	if err := json.Unmarshal([]byte(body), &api); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/api/status: %v %q\n%s", err, resp.Header.Get("Content-Type"), body)
	}
	if api.EveryMS != 1000 || api.Samples != 300 || api.Report == nil || api.History["x"] == nil {
		t.Fatalf("/api/status: %+v", api)
	}
	for _, path := range []string{"/index.html.bak", "/assets/app.js", "/nope"} {
		if resp, _ := get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}
}
