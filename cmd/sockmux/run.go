package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"sockmux/actors"
	"sockmux/carriers"
	"sockmux/internal/acceptloop"
	"sockmux/internal/ratelog"
)

// daemon runs the links of a configuration file and applies reloads.
type daemon struct {
	log    *slog.Logger
	mu     sync.Mutex
	cfg    *config
	links  map[string]*runningLink
	shares map[string]*runningShare
}

type runningShare struct {
	conf  *shareConf
	share *actors.Share
}

type runningLink struct {
	conf *linkConf
	node *actors.Node
	hops []*actors.Node
	ln   net.Listener
}

func runCmd(stderr io.Writer) *cobra.Command {
	var path, metricsAddr string
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the links of a config file; SIGHUP (or sockmux reload) re-reads it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
			if err != nil {
				return err
			}
			if cfg, err = loadConfig(path, log); err != nil {
				return err
			}
			if metricsAddr != "" {
				cfg.metrics = metricsAddr
			}
			return runDaemon(cmd.Context(), cfg, log)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "the config `FILE` (TOML)")
	cmd.Flags().StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics on `ADDR` (overrides the file's metrics key)")
	return cmd
}

func runDaemon(ctx context.Context, cfg *config, log *slog.Logger) error {
	// SIGHUP is taken before any link starts logging: a reload signalled
	// as soon as the first line shows must not be lost.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d := &daemon{log: log, cfg: cfg, links: map[string]*runningLink{}, shares: map[string]*runningShare{}}
	for _, l := range cfg.links {
		rl, err := d.start(l)
		if err != nil {
			d.shutdown(0)
			return err
		}
		d.links[l.name] = rl
	}
	for _, sc := range cfg.shares {
		rs, err := d.startShare(sc)
		if err != nil {
			d.shutdown(0)
			return err
		}
		d.shares[sc.name] = rs
	}
	ctrl, err := d.serveControl(cfg.control)
	if err != nil {
		d.shutdown(0)
		return err
	}
	defer ctrl.Close()
	if cfg.metrics != "" {
		srv, err := d.serveMetrics(cfg.metrics)
		if err != nil {
			d.shutdown(0)
			return err
		}
		defer srv.Close()
	}
	for {
		select {
		case <-hup:
			if err := d.reload(); err != nil {
				log.Error("reload rejected; the running configuration stays", "err", err)
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down")
	d.shutdown(5 * time.Second)
	return nil
}

// start brings one link up.
func (d *daemon) start(l *linkConf) (*runningLink, error) {
	rl := &runningLink{conf: l}
	log := d.log.With("link", l.name)
	cfg := l.cfg
	cfg.Logger = log
	if l.mode == "listen" {
		local, err := carriers.IsLoopback(l.addr)
		if err != nil {
			return nil, err
		}
		if !local && cfg.Key == nil && l.opts.tls.ClientCAFile == "" && !l.opts.insecure {
			return nil, fmt.Errorf("%w: link %q: %s: %w", errUsage, l.name, l.addr, errNoKey)
		}
		if rl.ln, err = carriers.Listen(l.addr, l.copts...); err != nil {
			return nil, fmt.Errorf("link %q: %w", l.name, err)
		}
	}
	node, err := actors.NewNode(cfg)
	if err != nil {
		if rl.ln != nil {
			rl.ln.Close()
		}
		return nil, fmt.Errorf("link %q: %w", l.name, err)
	}
	rl.node = node
	switch {
	case l.mode == "listen":
		node.Serve(rl.ln)
	case len(l.opts.via) > 0:
		dl, hops, err := cascade(log, cfg, l.copts, l.opts.via, l.addr)
		if err != nil {
			node.Close()
			return nil, err
		}
		rl.hops = hops
		node.Connect(dl)
	default:
		dl, err := carriers.NewDialer(l.addr, l.copts...)
		if err != nil {
			node.Close()
			return nil, err
		}
		node.Connect(dl)
	}
	return rl, nil
}

func (d *daemon) startShare(sc *shareConf) (*runningShare, error) {
	cfg := sc.cfg
	cfg.Logger = d.log.With("share", sc.name)
	s, err := actors.NewShare(cfg)
	if err != nil {
		return nil, fmt.Errorf("share %q: %w", sc.name, err)
	}
	return &runningShare{conf: sc, share: s}, nil
}

func (rl *runningLink) stop(drain time.Duration) {
	rl.node.Shutdown(drain)
	for i := len(rl.hops) - 1; i >= 0; i-- {
		rl.hops[i].Shutdown(drain)
	}
}

func (d *daemon) shutdown(drain time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var wg sync.WaitGroup
	for _, rl := range d.links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rl.stop(drain)
		}()
	}
	for _, rs := range d.shares {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs.share.Close()
		}()
	}
	wg.Wait()
	d.links = map[string]*runningLink{}
	d.shares = map[string]*runningShare{}
}

// reload re-reads the file. Forwards (local, dynamic) added or removed take
// effect at once, without touching the streams of the others; links added
// or removed start or stop; any other change to a running link is reported
// as needing a restart and not applied. A file that fails validation
// changes nothing.
func (d *daemon) reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next, err := loadConfig(d.cfg.path, d.log)
	if err != nil {
		return err
	}
	for name, rl := range d.links {
		if !slices.ContainsFunc(next.links, func(l *linkConf) bool { return l.name == name }) {
			d.log.Info("reload: link removed", "link", name)
			rl.stop(rl.conf.opts.drain)
			delete(d.links, name)
		}
	}
	for _, l := range next.links {
		rl, ok := d.links[l.name]
		if !ok {
			d.log.Info("reload: link added", "link", l.name)
			if rl, err = d.start(l); err != nil {
				d.log.Error("reload: link not started", "link", l.name, "err", err)
				continue
			}
			d.links[l.name] = rl
			continue
		}
		if !sameExceptForwards(rl.conf, l) {
			d.log.Warn("reload: changes to this link other than its forwards need a restart; not applied", "link", l.name)
			continue
		}
		d.applyForwards(rl, l)
	}
	for name, rs := range d.shares {
		i := slices.IndexFunc(next.shares, func(s *shareConf) bool { return s.name == name })
		if i < 0 || !reflect.DeepEqual(next.shares[i].raw, rs.conf.raw) {
			d.log.Info("reload: share removed or changed", "share", name)
			rs.share.Close()
			delete(d.shares, name)
		}
	}
	for _, sc := range next.shares {
		if _, ok := d.shares[sc.name]; ok {
			continue
		}
		rs, err := d.startShare(sc)
		if err != nil {
			d.log.Error("reload: share not started", "share", sc.name, "err", err)
			continue
		}
		d.shares[sc.name] = rs
	}
	d.cfg = next
	d.log.Info("reloaded", "config", next.path, "links", len(d.links), "shares", len(d.shares))
	return nil
}

func (d *daemon) applyForwards(rl *runningLink, next *linkConf) {
	log := d.log.With("link", next.name)
	had, want := map[string]actors.ForwardKeyed{}, map[string]actors.ForwardKeyed{}
	for _, f := range rl.conf.cfg.Forwards {
		had[actors.ForwardKey(f)] = actors.ForwardKeyed{Forward: f}
	}
	for _, b := range rl.conf.cfg.Dynamic {
		had[actors.ProxyKey(b)] = actors.ForwardKeyed{Proxy: b}
	}
	for _, f := range next.cfg.Forwards {
		want[actors.ForwardKey(f)] = actors.ForwardKeyed{Forward: f}
	}
	for _, b := range next.cfg.Dynamic {
		want[actors.ProxyKey(b)] = actors.ForwardKeyed{Proxy: b}
	}
	for k, f := range had {
		if w, ok := want[k]; !ok || w != f {
			rl.node.RemoveForward(k)
			log.Info("reload: forward removed", "forward", k)
		}
	}
	for k, f := range want {
		if h, ok := had[k]; ok && h == f {
			continue
		}
		var err error
		if f.Proxy != "" {
			err = rl.node.AddProxy(f.Proxy)
		} else {
			err = rl.node.AddForward(f.Forward)
		}
		if err != nil {
			log.Error("reload: forward not added", "forward", k, "err", err)
		} else {
			log.Info("reload: forward added", "forward", k)
		}
	}
	rl.conf = next
}

// linkReport is one link in sockmux status.
type linkReport struct {
	Name   string        `json:"name"`
	Mode   string        `json:"mode"`
	Addr   string        `json:"addr"`
	Status actors.Status `json:"status"`
}

// report is what the control socket answers to "status".
type report struct {
	Links  []linkReport  `json:"links"`
	Shares []shareReport `json:"shares,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// shareReport is one shared upstream in sockmux status.
type shareReport struct {
	Name   string            `json:"name"`
	Listen string            `json:"listen"`
	Stats  actors.ShareStats `json:"stats"`
}

func (d *daemon) report() report {
	d.mu.Lock()
	links := make([]*runningLink, 0, len(d.links))
	for _, rl := range d.links {
		links = append(links, rl)
	}
	shares := make([]*runningShare, 0, len(d.shares))
	for _, rs := range d.shares {
		shares = append(shares, rs)
	}
	d.mu.Unlock()
	sort.Slice(shares, func(i, j int) bool { return shares[i].conf.name < shares[j].conf.name })
	sort.Slice(links, func(i, j int) bool { return links[i].conf.name < links[j].conf.name })
	var r report
	for _, rl := range links {
		r.Links = append(r.Links, linkReport{Name: rl.conf.name, Mode: rl.conf.mode, Addr: rl.conf.addr, Status: rl.node.Status()})
	}
	for _, rs := range shares {
		r.Shares = append(r.Shares, shareReport{Name: rs.conf.name, Listen: rs.share.Addr().String(), Stats: rs.share.Stats()})
	}
	return r
}

// controlRequest is one line a control client sends.
type controlRequest struct {
	Cmd string `json:"cmd"` // "status" or "reload"
}

// serveControl listens on the control socket, mode 0600, and answers only
// clients of this user (or root).
func (d *daemon) serveControl(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another sockmux is running", path)
	}
	os.Remove(path)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	d.log.Info("control socket", "path", path)
	// Out of descriptors, the control socket must answer again once some
	// are free: it is how the operator finds out what is wrong.
	rl := acceptloop.New(ln, acceptloop.Options{Log: d.log, Limit: ratelog.New(0), Attrs: []any{"accepting", "control", "listen", path}})
	go func() {
		for {
			c, err := rl.Accept() // an error is the socket closed
			if err != nil {
				return
			}
			go d.control(c)
		}
	}()
	return rl, nil
}

// peerAllowed reports whether the client of a unix conn runs as this user
// or as root.
func peerAllowed(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil || cerr != nil {
		return false
	}
	return cred.Uid == uint32(os.Getuid()) || cred.Uid == 0
}

func (d *daemon) control(c net.Conn) {
	defer c.Close()
	enc := json.NewEncoder(c)
	if !peerAllowed(c) {
		enc.Encode(report{Error: "permission denied: not this daemon's user"})
		return
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var req controlRequest
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		enc.Encode(report{Error: "bad request: " + err.Error()})
		return
	}
	switch req.Cmd {
	case "status":
		enc.Encode(d.report())
	case "reload":
		if err := d.reload(); err != nil {
			d.log.Error("reload rejected; the running configuration stays", "err", err)
			enc.Encode(report{Error: err.Error()})
			return
		}
		enc.Encode(d.report())
	default:
		enc.Encode(report{Error: fmt.Sprintf("unknown command %q", req.Cmd)})
	}
}

// controlCall sends one request to a daemon's control socket.
func controlCall(path, cmd string) (report, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return report{}, fmt.Errorf("control socket: %w", err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(controlRequest{Cmd: cmd}); err != nil {
		return report{}, err
	}
	var r report
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		return report{}, fmt.Errorf("control socket answer: %w", err)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

// controlPath is --control, or the config file's control key.
func controlPath(control, cfgPath string) (string, error) {
	if control != "" {
		return control, nil
	}
	if cfgPath == "" {
		return "", fmt.Errorf("%w: give -c FILE or --control PATH", errUsage)
	}
	cfg, err := loadConfig(cfgPath, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", err
	}
	return cfg.control, nil
}

func checkCmd(stdout io.Writer) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Validate a config file and print the resolved configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			fmt.Fprint(stdout, cfg.describe())
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "the config `FILE` (TOML)")
	return cmd
}

func reloadCmd(stdout io.Writer) *cobra.Command {
	var path, control string
	cmd := &cobra.Command{
		Use:   "reload (-c FILE | --control PATH)",
		Short: "Make a running sockmux run re-read its config file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := controlPath(control, path)
			if err != nil {
				return err
			}
			if _, err := controlCall(p, "reload"); err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			fmt.Fprintln(stdout, "reloaded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "the config `FILE`, to find the control socket")
	cmd.Flags().StringVar(&control, "control", "", "the control socket `PATH`")
	return cmd
}

func statusCmd(stdout io.Writer) *cobra.Command {
	var path, control string
	var asJSON, watch bool
	cmd := &cobra.Command{
		Use:   "status (-c FILE | --control PATH) [--json] [--watch]",
		Short: "Show a running sockmux run's links, forwards and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := controlPath(control, path)
			if err != nil {
				return err
			}
			for {
				r, err := controlCall(p, "status")
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(stdout)
					enc.SetIndent("", "  ")
					enc.Encode(r)
				} else {
					printReport(stdout, r)
				}
				if !watch {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "the config `FILE`, to find the control socket")
	cmd.Flags().StringVar(&control, "control", "", "the control socket `PATH`")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&watch, "watch", false, "print again every second")
	return cmd
}

func printReport(w io.Writer, r report) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, l := range r.Links {
		s := l.Status
		fmt.Fprintf(tw, "link %s\t%s %s\tbytes in %d\tout %d\tstreams %d/%d\trefusals %d\treconnects %d\tcredit stalls %d\n",
			l.Name, l.Mode, l.Addr, s.BytesIn, s.BytesOut, s.StreamsOpened-s.StreamsClosed, s.StreamsOpened,
			s.Refusals, s.Reconnects, s.CreditStalls)
		for _, p := range s.Links {
			state := "down"
			if p.Up {
				state = "up"
			}
			fmt.Fprintf(tw, "  peer %s\t%s %s\tcarriers %d\trtt %v\tstreams open %d\tauthenticated %v\n",
				p.Peer, state, p.Role, p.Carriers, p.RTT.Round(time.Microsecond), p.Streams, p.Authenticated)
		}
		for _, f := range s.Forwards {
			fmt.Fprintf(tw, "  forward %s\tconnections %d\n", f.Listen, f.Conns)
		}
	}
	for _, sh := range r.Shares {
		st := sh.Stats
		fmt.Fprintf(tw, "share %s\tlisten %s\tupstream %s up=%v\tclients %d\tdropped %d\tslow disconnects %d\n",
			sh.Name, sh.Listen, st.Upstream, st.UpstreamUp, len(st.Clients), st.Dropped, st.SlowDisconnects)
		for _, c := range st.Clients {
			fmt.Fprintf(tw, "  client %s\tin %d\tout %d\tdropped %d\tqueued %d\n", c.Addr, c.In, c.Out, c.Dropped, c.Queued)
		}
	}
	tw.Flush()
}

// metrics exports every link's figures to Prometheus, read at scrape time.
type metrics struct{ d *daemon }

var (
	mLinkUp   = prometheus.NewDesc("sockmux_link_up", "1 while the link to the peer is up.", []string{"link", "peer"}, nil)
	mRTT      = prometheus.NewDesc("sockmux_link_rtt_seconds", "Last measured round trip (PING/PONG).", []string{"link", "peer"}, nil)
	mOpen     = prometheus.NewDesc("sockmux_link_streams_open", "Streams open on the link.", []string{"link", "peer"}, nil)
	mBytesIn  = prometheus.NewDesc("sockmux_bytes_received_total", "Stream payload bytes received from peers.", []string{"link"}, nil)
	mBytesOut = prometheus.NewDesc("sockmux_bytes_sent_total", "Stream payload bytes sent to peers.", []string{"link"}, nil)
	mOpened   = prometheus.NewDesc("sockmux_streams_opened_total", "Streams opened, both ways.", []string{"link"}, nil)
	mRefused  = prometheus.NewDesc("sockmux_refusals_total", "OPENs and BINDs refused by policy or limits.", []string{"link"}, nil)
	mReconn   = prometheus.NewDesc("sockmux_reconnects_total", "Links that came up again after going down.", []string{"link"}, nil)
	mStalls   = prometheus.NewDesc("sockmux_credit_stalls_total", "Times a stream waited for the peer's credit.", []string{"link"}, nil)
	mDropped  = prometheus.NewDesc("sockmux_dropped_datagrams_total", "UDP datagrams dropped.", []string{"link"}, nil)
	mFwdConns = prometheus.NewDesc("sockmux_forward_connections_total", "Connections a forward accepted.", []string{"link", "listen"}, nil)
	mShareUp  = prometheus.NewDesc("sockmux_share_upstream_up", "1 while the shared upstream is connected.", []string{"share"}, nil)
	mShareCl  = prometheus.NewDesc("sockmux_share_clients", "Clients connected to the share.", []string{"share"}, nil)
	mShareDr  = prometheus.NewDesc("sockmux_share_dropped_bytes_total", "Upstream bytes dropped for slow clients.", []string{"share"}, nil)
)

func (m metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mLinkUp, mRTT, mOpen, mBytesIn, mBytesOut, mOpened, mRefused, mReconn, mStalls, mDropped, mFwdConns, mShareUp, mShareCl, mShareDr} {
		ch <- d
	}
}

func (m metrics) Collect(ch chan<- prometheus.Metric) {
	r := m.d.report()
	for _, sh := range r.Shares {
		up := 0.0
		if sh.Stats.UpstreamUp {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(mShareUp, prometheus.GaugeValue, up, sh.Name)
		ch <- prometheus.MustNewConstMetric(mShareCl, prometheus.GaugeValue, float64(len(sh.Stats.Clients)), sh.Name)
		ch <- prometheus.MustNewConstMetric(mShareDr, prometheus.CounterValue, float64(sh.Stats.Dropped), sh.Name)
	}
	for _, l := range r.Links {
		s := l.Status
		for _, p := range s.Links {
			up := 0.0
			if p.Up {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(mLinkUp, prometheus.GaugeValue, up, l.Name, p.Peer)
			ch <- prometheus.MustNewConstMetric(mRTT, prometheus.GaugeValue, p.RTT.Seconds(), l.Name, p.Peer)
			ch <- prometheus.MustNewConstMetric(mOpen, prometheus.GaugeValue, float64(p.Streams), l.Name, p.Peer)
		}
		for d, v := range map[*prometheus.Desc]int64{mBytesIn: s.BytesIn, mBytesOut: s.BytesOut, mOpened: s.StreamsOpened,
			mRefused: s.Refusals, mReconn: s.Reconnects, mStalls: s.CreditStalls, mDropped: s.DroppedDatagrams} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l.Name)
		}
		for _, f := range s.Forwards {
			ch <- prometheus.MustNewConstMetric(mFwdConns, prometheus.CounterValue, float64(f.Conns), l.Name, f.Listen)
		}
	}
}

// serveMetrics serves /metrics on addr.
func (d *daemon) serveMetrics(addr string) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics{d})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// http.Server rides out EMFILE itself, but gives up on ENOBUFS and
	// ENOMEM; the wrapper waits out every error but the closing.
	go srv.Serve(acceptloop.New(ln, acceptloop.Options{Log: d.log, Limit: ratelog.New(0), Attrs: []any{"accepting", "metrics", "listen", ln.Addr().String()}}))
	d.log.Info("metrics listening", "addr", ln.Addr().String())
	return srv, nil
}
