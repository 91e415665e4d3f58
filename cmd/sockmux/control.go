package main

// The control socket of sockmux run, and the commands that talk to it:
// check, reload, status.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/acceptloop"
	"github.com/sockmux/sockmux/internal/ratelog"
)

// linkReport is one link in sockmux status. Addr is where it listens or
// what it dials: of a connect link's failover list (Addrs), the address
// in use.
type linkReport struct {
	Name   string         `json:"name"`
	Mode   string         `json:"mode"`
	Addr   string         `json:"addr"`
	Addrs  []string       `json:"addrs,omitempty"`
	Status sockmux.Status `json:"status"`
}

// report is what the control socket answers to "status".
type report struct {
	Links  []linkReport  `json:"links"`
	Shares []shareReport `json:"shares,omitempty"`
	Reload *reloadResult `json:"reload,omitempty"` // the answer to "reload"
	Error  string        `json:"error,omitempty"`
}

// shareReport is one shared upstream in sockmux status.
type shareReport struct {
	Name   string             `json:"name"`
	Listen string             `json:"listen"`
	Stats  sockmux.ShareStats `json:"stats"`
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
		lr := linkReport{Name: rl.conf.name, Mode: rl.conf.mode, Addr: rl.conf.addr, Status: rl.node.Status()}
		if len(rl.conf.addrs) > 1 {
			lr.Addr, lr.Addrs = inUse(rl.conf.addrs, lr.Status), rl.conf.addrs
		}
		r.Links = append(r.Links, lr)
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
	if err := controlAvailable(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another sockmux is running", path)
	}
	os.Remove(path)
	ln, err := listenPrivate(path)
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
	var uid int
	var cerr error
	if err := raw.Control(func(fd uintptr) { uid, cerr = peerUID(fd) }); err != nil || cerr != nil {
		return false
	}
	return uid == os.Getuid() || uid == 0
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
		res, err := d.reload()
		if err != nil {
			d.log.Error("reload rejected; the running configuration stays", "err", err)
			enc.Encode(report{Error: err.Error()})
			return
		}
		r := d.report()
		r.Reload = res
		enc.Encode(r)
	default:
		enc.Encode(report{Error: fmt.Sprintf("unknown command %q", req.Cmd)})
	}
}

// controlCall sends one request to a daemon's control socket.
func controlCall(path, cmd string) (report, error) {
	if err := controlAvailable(); err != nil {
		return report{}, err
	}
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

// controlLine finds a config file's control socket without parsing the
// file as a whole: its top-level control = "PATH" line, or the default.
func controlLine(cfgPath string) (string, bool) {
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return "", false
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			break // the process-wide keys come before the first table
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "control" {
			if p, err := strconv.Unquote(strings.TrimSpace(v)); err == nil && p != "" {
				return p, true
			}
			return "", false
		}
	}
	dir, err := carriers.DefaultStateDir()
	if err != nil {
		return "", false
	}
	return filepath.Join(filepath.Dir(dir), "sockmux.sock"), true
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
			r, err := controlCall(p, "reload")
			if err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			res := r.Reload
			if res == nil { // a daemon that predates the account
				fmt.Fprintln(stdout, "reloaded")
				return nil
			}
			for _, a := range res.Applied {
				fmt.Fprintln(stdout, "applied:", a)
			}
			for _, n := range res.NeedRestart {
				fmt.Fprintln(stdout, "not applied:", n)
			}
			for _, f := range res.Failed {
				fmt.Fprintln(stdout, "failed:", f)
			}
			if !res.complete() {
				// What needs a restart and what failed are told apart: a
				// restart does not free a port that is taken.
				var parts []string
				if n := len(res.NeedRestart); n > 0 {
					parts = append(parts, fmt.Sprintf("%d change(s) take effect only when sockmux run restarts", n))
				}
				if n := len(res.Failed); n > 0 {
					parts = append(parts, fmt.Sprintf("%d change(s) failed (see failed: above)", n))
				}
				return fmt.Errorf("%w: reload: %s", errIncomplete, strings.Join(parts, "; "))
			}
			if len(res.Applied) == 0 {
				fmt.Fprintln(stdout, "reloaded: nothing changed")
			} else {
				fmt.Fprintln(stdout, "reloaded")
			}
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
			var fileErr error
			if err != nil && control == "" && path != "" {
				// The file may be mid-edit while its daemon runs on what
				// it read before: status still asks it (reload would not:
				// the daemon would refuse the file anyway).
				var ok bool
				if p, ok = controlLine(path); !ok {
					return err
				}
				fileErr = err
			} else if err != nil {
				return err
			}
			for {
				r, err := controlCall(p, "status")
				if err != nil && fileErr != nil {
					return fmt.Errorf("%w (and the file does not parse: %w)", err, fileErr)
				}
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
		addr := l.Addr
		if n := failoverPosition(l); n != "" {
			addr += " (" + n + ")"
		}
		fmt.Fprintf(tw, "link %s\t%s %s\tbytes in %d\tout %d\tstreams %d/%d\trefusals %d\treconnects %d\tcredit stalls %d\n",
			l.Name, l.Mode, addr, s.BytesIn, s.BytesOut, s.StreamsOpened-s.StreamsClosed, s.StreamsOpened,
			s.Refusals, s.Reconnects, s.CreditStalls)
		for _, p := range s.Links {
			state := "down"
			if p.Up {
				state = "up"
			}
			fmt.Fprintf(tw, "  peer %s\t%s %s\tcarriers %d\trtt %v\tstreams open %d\tauthenticated %v\n",
				p.Peer, state, p.Role, p.Carriers, p.RTT.Round(time.Microsecond), p.Streams, p.Authenticated)
			for _, r := range p.Remotes {
				answer := "asked"
				switch {
				case r.Listening != "":
					answer = "listening at " + r.Listening
				case r.Refused != "":
					answer = "refused: " + r.Refused
				}
				fmt.Fprintf(tw, "    -R %s\tto %s\t%s\n", r.Bind, r.Target, answer)
			}
			for _, a := range p.Reverse {
				fmt.Fprintf(tw, "    listening for the peer at %s\n", a)
			}
		}
		for _, f := range s.Forwards {
			fmt.Fprintf(tw, "  forward %s\t%s\tconnections %d\n", f.Listen, f.Kind, f.Conns)
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
