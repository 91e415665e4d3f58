package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sockmux/sockmux/internal/procgroup"
)

// The iperf3 workload measures one TCP stream's bulk throughput through a
// tunnel with a real client and server, each a process of its own: iperf3
// -c through the tunnel's local end to an iperf3 -s on loopback. Beside
// the rate it counts what the tunnel's processes (both peers: sockmux
// listen and connect, or ssh and sshd with its children) spent in user and
// system CPU time, from /proc, and reports bytes moved per CPU-second. The
// systems take turns within each round, their order rotating.

// Iperf is an iperf3 server on a loopback port of its own.
type Iperf struct{ serverProc }

// NewIperf starts iperf3 -s on a free loopback port. Without iperf3 the
// error is ErrMissingTool.
func NewIperf() (*Iperf, error) {
	path, err := lookTool("iperf3", "iperf3")
	if err != nil {
		return nil, err
	}
	cmd, addr, err := startOnFreePort("iperf3 -s", func(port string) *exec.Cmd {
		cmd := exec.Command(path, "-s", "--forceflush", "-B", "127.0.0.1", "-p", port) // --forceflush: its "listening" reaches the pipe at once
		procgroup.Set(cmd)
		return cmd
	}, "Server listening", false)
	if err != nil {
		return nil, err
	}
	return &Iperf{serverProc{cmd: cmd, addr: addr}}, nil
}

// IperfRun is one iperf3 client run: the bytes the server received and
// the seconds it took them.
type IperfRun struct {
	Bytes   int64
	Seconds float64
}

// Rate is the run's throughput in MB/s (10⁶ bytes).
func (r IperfRun) Rate() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Seconds / 1e6
}

// IperfClient runs iperf3 -c through addr for seconds with one stream
// (-P 1) and returns what the server says it received.
func IperfClient(addr string, seconds int) (IperfRun, error) {
	path, err := lookTool("iperf3", "iperf3")
	if err != nil {
		return IperfRun{}, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return IperfRun{}, err
	}
	out, err := exec.Command(path, "-c", host, "-p", port, "-P", "1", "-t", strconv.Itoa(seconds), "-J").Output()
	run, perr := ParseIperfJSON(out)
	if err != nil {
		if perr == nil && run.Bytes == 0 {
			perr = err
		}
		return IperfRun{}, fmt.Errorf("iperf3 -c: %v (%v)", err, perr)
	}
	return run, perr
}

// ParseIperfJSON reads the result of iperf3 -J: the bytes and seconds of
// the receiver's sum (end.sum_received), or the error iperf3 reports.
func ParseIperfJSON(out []byte) (IperfRun, error) {
	var doc struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				Bytes   int64   `json:"bytes"`
				Seconds float64 `json:"seconds"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return IperfRun{}, fmt.Errorf("iperf3 -J: %w in %q", err, truncate(out, 200))
	}
	if doc.Error != "" {
		return IperfRun{}, fmt.Errorf("iperf3: %s", doc.Error)
	}
	r := IperfRun{Bytes: doc.End.SumReceived.Bytes, Seconds: doc.End.SumReceived.Seconds}
	if r.Bytes <= 0 || r.Seconds <= 0 {
		return IperfRun{}, fmt.Errorf("iperf3 -J: the receiver got %d bytes in %v s", r.Bytes, r.Seconds)
	}
	return r, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// IperfConfig sizes the iperf3 workload.
type IperfConfig struct {
	// Rounds is how many times each system runs, the systems taking turns
	// (their order rotating from round to round).
	Rounds int
	// Seconds is one run's length (iperf3 -t).
	Seconds int
	// Progress, when set, is told what runs.
	Progress func(status string)
}

// DefaultIperfConfig is the benchmark's size: 5 rounds of 5 s a system.
var DefaultIperfConfig = IperfConfig{Rounds: 5, Seconds: 5}

// IperfResult holds every round's figures for each system: the rate in
// MB/s, and the bytes per CPU-second of the tunnel's processes in MB (none
// for a tunnel without processes of its own).
type IperfResult struct {
	Systems []string
	Rate    map[string][]float64
	PerCPU  map[string][]float64
}

// MeasureIperf builds a tunnel of each system to one iperf3 server and
// runs the client through each, interleaved. A system whose tools are
// missing fails it with ErrMissingTool.
func MeasureIperf(systems []System, cfg IperfConfig) (*IperfResult, error) {
	srv, err := NewIperf()
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
	res := &IperfResult{Rate: map[string][]float64{}, PerCPU: map[string][]float64{}}
	for i, sys := range systems {
		if tuns[i], err = sys.New(srv.Addr(), Options{}); err != nil {
			return nil, fmt.Errorf("%s: %w", sys.Name, err)
		}
		res.Systems = append(res.Systems, sys.Name)
		if _, err := IperfClient(tuns[i].Addr(), 1); err != nil { // a warm-up
			return nil, fmt.Errorf("%s: %w", sys.Name, err)
		}
	}
	for round := range cfg.Rounds {
		for k := range systems {
			i := (k + round) % len(systems)
			name := systems[i].Name
			if cfg.Progress != nil {
				cfg.Progress(fmt.Sprintf("round %d/%d: iperf3 through %s", round+1, cfg.Rounds, name))
			}
			pt, hasProcs := tuns[i].(processTree)
			var before time.Duration
			if hasProcs {
				before, _ = treeUse(pt.Processes())
			}
			run, err := IperfClient(tuns[i].Addr(), cfg.Seconds)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			res.Rate[name] = append(res.Rate[name], run.Rate())
			if hasProcs {
				cpu, _ := treeUse(pt.Processes())
				if s := (cpu - before).Seconds(); s > 0 {
					res.PerCPU[name] = append(res.PerCPU[name], float64(run.Bytes)/s/1e6)
				}
			}
		}
	}
	return res, nil
}

// Ratio is the median over the rounds of system's figure over base's in
// the same round (of the rate, or with cpu of the bytes per CPU-second).
func (r *IperfResult) Ratio(system, base string, cpu bool) float64 {
	v := r.Rate
	if cpu {
		v = r.PerCPU
	}
	a, b := v[system], v[base]
	var q []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			q = append(q, a[i]/b[i])
		}
	}
	return medianValue(q)
}

// WriteIperfTable writes the result as a table: each system's median rate
// and bytes per CPU-second with every round's figure, then each pair's
// ratio (median of the rounds' ratios).
func WriteIperfTable(w io.Writer, r *IperfResult, pairs [][2]string) error {
	var b strings.Builder
	b.WriteString("| system | MB/s | MB per CPU-second (both peers) |\n|---|---|---|\n")
	for _, s := range r.Systems {
		fmt.Fprintf(&b, "| %s | **%s** (%s) |", s, fmtFigure(medianValue(r.Rate[s])), fmtRounds(r.Rate[s]))
		if len(r.PerCPU[s]) == 0 {
			b.WriteString(" – |\n")
			continue
		}
		fmt.Fprintf(&b, " **%s** (%s) |\n", fmtFigure(medianValue(r.PerCPU[s])), fmtRounds(r.PerCPU[s]))
	}
	b.WriteString("\n| ratio | throughput | bytes per CPU-second |\n|---|---|---|\n")
	for _, p := range pairs {
		fmt.Fprintf(&b, "| %s ÷ %s | **%.2f** | **%.2f** |\n", p[0], p[1], r.Ratio(p[0], p[1], false), r.Ratio(p[0], p[1], true))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
