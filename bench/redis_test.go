package bench

import (
	"strings"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestOpenSSHCarries: the ssh -L system carries bulk data, round trips and
// a new connection's first answer intact, and Close ends its processes
// (the forward no longer answers).
func TestOpenSSHCarries(t *testing.T) {
	testkit.NeedTool(t, "ssh")
	testkit.NeedTool(t, "ssh-keygen")
	if _, err := lookTool("sshd", "openssh-server"); err != nil {
		testkit.NeedTool(t, "sshd")
	}
	echo := newEcho(t)
	tun, err := NewOpenSSH(echo.Addr(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RoundTrips(tun.Addr(), 50, RequestSize, nil, nil); err != nil {
		t.Fatal("round trips:", err)
	}
	if _, err := FirstResponse(tun.Addr(), 64); err != nil {
		t.Fatal("first response:", err)
	}
	sink := newSink(t)
	bulk, err := NewOpenSSH(sink.Addr(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bulk.Close()
	if _, err := PushParallel(bulk.Addr(), 4<<20, 4); err != nil {
		t.Fatal("bulk:", err)
	}
	tun.Close()
	if _, err := FirstResponse(tun.Addr(), 64); err == nil {
		t.Fatal("the forward still answers after Close")
	}
}

// TestRedisWorkload: a small redis workload through redis alone, ssh -L
// and sockmux apart yields a figure for every workload, system and round,
// each GET counted at the server.
func TestRedisWorkload(t *testing.T) {
	for _, tool := range []string{"redis-server", "redis-benchmark", "ssh", "ssh-keygen"} {
		testkit.NeedTool(t, tool)
	}
	if _, err := lookTool("sshd", "openssh-server"); err != nil {
		testkit.NeedTool(t, "sshd")
	}
	cfg := RedisConfig{Rounds: 2, Requests1: 300, Requests50: 2000, Connections: 5}
	res, err := MeasureRedis([]System{Direct, OpenSSH, Apart(Sockmux)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{WorkloadRedisGet1, WorkloadRedisGet50, WorkloadRedisTTFR} {
		for _, s := range []string{Direct.Name, OpenSSH.Name, Sockmux.Name} {
			if v := res.Rounds[w][s]; len(v) != cfg.Rounds || res.Median(w, s) <= 0 {
				t.Errorf("%s through %s: rounds %v", w, s, v)
			}
		}
	}
	// 2,000 GETs cost the tunnel's processes some CPU; redis alone has none.
	if v := res.CPU[WorkloadRedisGet50][Sockmux.Name]; len(v) != cfg.Rounds {
		t.Errorf("sockmux's CPU per GET: %v", v)
	}
	if v := res.CPU[WorkloadRedisGet50][Direct.Name]; len(v) != 0 {
		t.Errorf("redis alone has tunnel CPU: %v", v)
	}
	var b strings.Builder
	if err := WriteRedisTable(&b, res, Sockmux.Name, OpenSSH.Name); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| redis-get-50 | req/s |") || strings.Count(b.String(), "\n") != 9 {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestRedisGetsCheck: a run of GETs counts at the server as one hit each,
// and a count that does not match is an error.
func TestRedisGetsCheck(t *testing.T) {
	testkit.NeedTool(t, "redis-server")
	testkit.NeedTool(t, "redis-benchmark")
	srv, err := NewRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rps, err := RedisGets(srv, srv.Addr(), 2, 500)
	if err != nil || rps <= 0 {
		t.Fatalf("direct: %v req/s, %v", rps, err)
	}
	// Another server's address: its GETs do not reach srv.
	other, err := NewRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := RedisGets(srv, other.Addr(), 1, 100); err == nil || !strings.Contains(err.Error(), "found the key") {
		t.Fatalf("GETs to another server: %v, want a count error", err)
	}
}

// TestParseBenchmarkCSV: redis-benchmark's --csv line for a test is found
// and read; a missing one is an error.
func TestParseBenchmarkCSV(t *testing.T) {
	out := []byte("\"test\",\"rps\",\"avg_latency_ms\"\n\"GET\",\"12195.12\",\"0.078\"\n")
	if v, err := parseBenchmarkCSV(out, "GET"); err != nil || v != 12195.12 {
		t.Fatalf("GET: %v, %v", v, err)
	}
	if _, err := parseBenchmarkCSV(out, "SET"); err == nil {
		t.Fatal("SET found in output without it")
	}
	if got := string(respCommand("GET", "k")); got != "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" {
		t.Fatalf("respCommand: %q", got)
	}
}
