package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The redis workload measures what a tunnel adds to a real client and
// server, each a process of its own: redis-benchmark's GET with one
// connection (latency bound: every request waits for its answer) and with
// 50 (the tunnel's cost per message when many are in flight), and a new
// connection's time to its first answer. The tunnels compared are sockmux,
// its two peers in processes of their own (Apart), and OpenSSH's ssh -L;
// redis alone (direct) is the floor. Rounds interleave the systems.

// RedisKey is the key redis-benchmark's GET asks for (its default, with no
// -r), set before the workload runs so that every GET finds a value.
const RedisKey = "key:__rand_int__"

// redisValue is RedisKey's value: 3 bytes, redis-benchmark's default size.
const redisValue = "xxx"

// Redis is a redis-server on a loopback port of its own, saving nothing.
type Redis struct{ serverProc }

// NewRedis starts a redis-server on a free loopback port and sets RedisKey.
// Without redis-server the error is ErrMissingTool.
func NewRedis() (*Redis, error) {
	path, err := lookTool("redis-server", "redis-server")
	if err != nil {
		return nil, err
	}
	cmd, addr, err := startOnFreePort("redis-server", func(port string) *exec.Cmd {
		return exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	}, "Ready to accept connections", false)
	if err != nil {
		return nil, err
	}
	r := &Redis{serverProc{cmd: cmd, addr: addr}}
	if _, err := r.command("SET", RedisKey, redisValue); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// command sends one command on a connection of its own and returns the
// answer's first line.
func (r *Redis) command(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(respCommand(args...)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redis %s: %w", args[0], err)
	}
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis %s: %s", args[0], strings.TrimSpace(line))
	}
	return line, nil
}

// hits is the server's count of lookups that found their key (INFO's
// keyspace_hits): what a run of GETs adds to it is how many arrived.
func (r *Redis) hits() (int64, error) {
	c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(respCommand("INFO", "stats")); err != nil {
		return 0, err
	}
	br := bufio.NewReader(c)
	head, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return 0, fmt.Errorf("redis INFO: %q %v", head, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil {
		return 0, fmt.Errorf("redis INFO: %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(line, "keyspace_hits:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redis INFO: no keyspace_hits")
}

// respCommand encodes a command in RESP, as a client sends it.
func respCommand(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

// RedisGets runs redis-benchmark's GET through addr to r: requests
// requests on clients connections at once. It returns the requests per
// second redis-benchmark reports, checked against the server, which must
// have found RedisKey once for each request.
func RedisGets(r *Redis, addr string, clients, requests int) (float64, error) {
	path, err := lookTool("redis-benchmark", "redis-tools")
	if err != nil {
		return 0, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	before, err := r.hits()
	if err != nil {
		return 0, err
	}
	out, err := exec.Command(path, "-h", host, "-p", port, "-c", strconv.Itoa(clients), "-n", strconv.Itoa(requests),
		"-t", "get", "--csv").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark: %v: %s", err, out)
	}
	rps, err := parseBenchmarkCSV(out, "GET")
	if err != nil {
		return 0, err
	}
	after, err := r.hits()
	if err != nil {
		return 0, err
	}
	if got := after - before; got != int64(requests) {
		return 0, fmt.Errorf("redis-benchmark: %d GETs found the key at the server, want %d", got, requests)
	}
	return rps, nil
}

// parseBenchmarkCSV finds test's requests per second in redis-benchmark's
// --csv output ("test","rps",... then one line per test).
func parseBenchmarkCSV(out []byte, test string) (float64, error) {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) >= 2 && strings.Trim(f[0], `"`) == test {
			return strconv.ParseFloat(strings.Trim(f[1], `"`), 64)
		}
	}
	return 0, fmt.Errorf("redis-benchmark: no %s line in %q", test, out)
}

// RedisFirstResponse connects through addr to a Redis, sends a GET of
// RedisKey at once and returns the time from starting to connect to having
// the whole answer, which must be the key's value.
func RedisFirstResponse(addr string) (time.Duration, error) {
	req := respCommand("GET", RedisKey)
	want := "$" + strconv.Itoa(len(redisValue)) + "\r\n" + redisValue + "\r\n"
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(start.Add(5 * time.Second))
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	resp := make([]byte, len(want))
	if _, err := io.ReadFull(c, resp); err != nil {
		return 0, fmt.Errorf("first response: %w", err)
	}
	d := time.Since(start)
	if !bytes.Equal(resp, []byte(want)) {
		return d, fmt.Errorf("first response: %q, want %q", resp, want)
	}
	return d, nil
}

// Apart is sys with each of its two peers in a helper process of its own
// (see HelperEnv), as a user runs them: for sockmux, a `sockmux listen` and
// a `sockmux connect -L` with their defaults. sys must have Far and Near.
func Apart(sys System) System {
	return System{Name: sys.Name, New: func(target string, _ Options) (Tunnel, error) {
		if sys.Far == nil || sys.Near == nil {
			return nil, fmt.Errorf("%s has no peers to run apart", sys.Name)
		}
		far, err := startHelper("far", sys.Name, target, "0")
		if err != nil {
			return nil, err
		}
		near, err := startHelper("near", sys.Name, far.addr, target, "0")
		if err != nil {
			far.Close()
			return nil, err
		}
		return &apart{far: far, near: near}, nil
	}}
}

// apart is a tunnel whose peers are helper processes.
type apart struct{ far, near *helper }

func (a *apart) Addr() string { return a.near.addr }

func (a *apart) Close() {
	a.near.Close()
	a.far.Close()
}

// The redis workloads' names.
const (
	WorkloadRedisGet1  = "redis-get-1"
	WorkloadRedisGet50 = "redis-get-50"
	WorkloadRedisTTFR  = "redis-ttfr"
)

// RedisConfig sizes the redis workload.
type RedisConfig struct {
	// Rounds is how many times each system runs each measurement, the
	// systems taking turns (their order rotating from round to round).
	Rounds int
	// Requests1 and Requests50 are the GETs of one measurement with one
	// connection and with 50.
	Requests1, Requests50 int
	// Connections is how many new connections one first-response
	// measurement makes, one after the other (its figure is their median).
	Connections int
	// Progress, when set, is told what runs.
	Progress func(status string)
}

// DefaultRedisConfig is the benchmark's size: about 20 s a round with the
// three systems on the reference machine.
var DefaultRedisConfig = RedisConfig{Rounds: 5, Requests1: 20_000, Requests50: 100_000, Connections: 500}

// RedisResult holds every round's figures: for each workload, for each
// system, one value a round (requests per second for the GETs, the median
// time to the first response in ms).
type RedisResult struct {
	Systems []string
	Rounds  map[string]map[string][]float64
	// CPU is, for the GET workloads, each round's CPU time per request of
	// the tunnel's processes (both peers, and sshd's per-connection
	// children), in µs; none for redis alone. Sleeps is, likewise, how
	// many times per request one of their threads went to sleep.
	CPU, Sleeps map[string]map[string][]float64
}

// CPUMedian is the median of a workload's CPU per request for a system.
func (r *RedisResult) CPUMedian(workload, system string) float64 {
	return medianValue(r.CPU[workload][system])
}

// Median is the median of a workload's rounds for a system (0 when it has
// none).
func (r *RedisResult) Median(workload, system string) float64 {
	return medianValue(r.Rounds[workload][system])
}

func medianValue(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MeasureRedis builds a tunnel of each system to a fresh Redis and runs
// the redis workloads through each, interleaved: each round runs GET with
// one connection through every system, then GET with 50, then the first
// responses, the systems' order rotating from round to round. A system
// whose tools are missing fails it with ErrMissingTool.
func MeasureRedis(systems []System, cfg RedisConfig) (*RedisResult, error) {
	srv, err := NewRedis()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	tuns := make([]Tunnel, len(systems))
	defer func() {
		for _, t := range tuns {
			if t != nil {
				t.Close()
			}
		}
	}()
	res := &RedisResult{Rounds: map[string]map[string][]float64{
		WorkloadRedisGet1: {}, WorkloadRedisGet50: {}, WorkloadRedisTTFR: {}},
		CPU:    map[string]map[string][]float64{WorkloadRedisGet1: {}, WorkloadRedisGet50: {}},
		Sleeps: map[string]map[string][]float64{WorkloadRedisGet1: {}, WorkloadRedisGet50: {}}}
	for i, sys := range systems {
		if tuns[i], err = sys.New(srv.Addr(), Options{}); err != nil {
			return nil, fmt.Errorf("%s: %w", sys.Name, err)
		}
		res.Systems = append(res.Systems, sys.Name)
		// A warm-up, so that nothing done once per tunnel counts.
		if _, err := RedisGets(srv, tuns[i].Addr(), 1, 1000); err != nil {
			return nil, fmt.Errorf("%s: %w", sys.Name, err)
		}
	}
	say := func(s string) {
		if cfg.Progress != nil {
			cfg.Progress(s)
		}
	}
	for round := range cfg.Rounds {
		for _, w := range []string{WorkloadRedisGet1, WorkloadRedisGet50, WorkloadRedisTTFR} {
			for k := range systems {
				i := (k + round) % len(systems)
				name := systems[i].Name
				say(fmt.Sprintf("round %d/%d: %s through %s", round+1, cfg.Rounds, w, name))
				pt, hasProcs := tuns[i].(processTree)
				var (
					before time.Duration
					slept  int64
				)
				if hasProcs {
					before, slept = treeUse(pt.Processes())
				}
				v, err := redisRun(srv, tuns[i].Addr(), w, cfg)
				if err != nil {
					return nil, fmt.Errorf("%s, %s: %w", name, w, err)
				}
				res.Rounds[w][name] = append(res.Rounds[w][name], v)
				if n := map[string]int{WorkloadRedisGet1: cfg.Requests1, WorkloadRedisGet50: cfg.Requests50}[w]; hasProcs && n > 0 {
					cpu, sleeps := treeUse(pt.Processes())
					res.CPU[w][name] = append(res.CPU[w][name], us(cpu-before)/float64(n))
					res.Sleeps[w][name] = append(res.Sleeps[w][name], float64(sleeps-slept)/float64(n))
				}
			}
		}
	}
	return res, nil
}

// redisRun is one measurement of workload w through addr.
func redisRun(srv *Redis, addr, w string, cfg RedisConfig) (float64, error) {
	switch w {
	case WorkloadRedisGet1:
		return RedisGets(srv, addr, 1, cfg.Requests1)
	case WorkloadRedisGet50:
		return RedisGets(srv, addr, 50, cfg.Requests50)
	}
	ds := make([]time.Duration, 0, cfg.Connections)
	for range cfg.Connections {
		d, err := RedisFirstResponse(addr)
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
	}
	return ms(Percentile(ds, 50)), nil
}

// WriteRedisTable writes the result as a table: each workload's median
// per system, each round's figures, and the ratio of system to base
// (sockmux to ssh: above 1 is better for the GETs, below 1 for the first
// response).
func WriteRedisTable(w io.Writer, r *RedisResult, system, base string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "| workload | unit |")
	for _, s := range r.Systems {
		fmt.Fprintf(&b, " %s |", s)
	}
	fmt.Fprintf(&b, " %s ÷ %s |\n|---|---|", system, base)
	for range r.Systems {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	for _, wl := range []string{WorkloadRedisGet1, WorkloadRedisGet50, WorkloadRedisTTFR} {
		unit := "req/s"
		if wl == WorkloadRedisTTFR {
			unit = "p50 ms"
		}
		fmt.Fprintf(&b, "| %s | %s |", wl, unit)
		for _, s := range r.Systems {
			fmt.Fprintf(&b, " **%s** (%s) |", fmtFigure(r.Median(wl, s)), fmtRounds(r.Rounds[wl][s]))
		}
		ratio := 0.0
		if m := r.Median(wl, base); m > 0 {
			ratio = r.Median(wl, system) / m
		}
		fmt.Fprintf(&b, " **%.2f** |\n", ratio)
	}
	for _, row := range []struct {
		what, unit string
		v          map[string]map[string][]float64
	}{{"CPU of the tunnel's processes", "µs/req", r.CPU}, {"their threads' sleeps", "per req", r.Sleeps}} {
		for _, wl := range []string{WorkloadRedisGet1, WorkloadRedisGet50} {
			fmt.Fprintf(&b, "| %s, %s | %s |", wl, row.what, row.unit)
			for _, s := range r.Systems {
				if len(row.v[wl][s]) == 0 {
					b.WriteString(" – |")
					continue
				}
				fmt.Fprintf(&b, " **%.2f** (%s) |", medianValue(row.v[wl][s]), fmtSmall(row.v[wl][s]))
			}
			ratio := 0.0
			if m := medianValue(row.v[wl][base]); m > 0 {
				ratio = medianValue(row.v[wl][system]) / m
			}
			fmt.Fprintf(&b, " **%.2f** |\n", ratio)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtFigure(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// fmtSmall formats per-request figures with two decimals.
func fmtSmall(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(s, ", ")
}

func fmtRounds(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmtFigure(x)
	}
	return strings.Join(s, ", ")
}
