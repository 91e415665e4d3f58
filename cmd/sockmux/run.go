package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/cluster"
)

// daemon runs the links of a configuration file and applies reloads.
type daemon struct {
	log    *slog.Logger
	mu     sync.Mutex
	cfg    *config
	links  map[string]*runningLink
	shares map[string]*runningShare

	// The hub cluster's, when the file has a [cluster] table: the
	// membership, whose directory every listen link's edges' binds go to
	// (start), and the bridge and the door (the other hubs' links), both
	// at one listen link's node, named bridged, the bridge with the
	// settings bridgeCfg, its link's (bridge).
	member    *cluster.Member
	door      *hubDoor
	bridger   *cluster.Bridge
	bridged   string
	bridgeCfg cluster.BridgeConfig
}

type runningShare struct {
	conf  *shareConf
	share *sockmux.Share
}

type runningLink struct {
	conf *linkConf
	node *sockmux.Peer
	hops []*sockmux.Peer
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
	if cfg.cluster != nil {
		door, err := openHubDoor(&cfg.cluster.flags, &cfg.cluster.cfg)
		if err != nil {
			return err
		}
		member, err := startCluster(&cfg.cluster.flags, cfg.cluster.cfg)
		if err != nil {
			door.close()
			return err
		}
		d.member, d.door = member, door
		door.onLost(member.LinksClosed)
		// Run in turn after the links' shutdown below: the bridge
		// closes, the member leaves, then the door closes.
		defer door.close()
		defer member.Close()
		defer d.unbridge()
	}
	for _, l := range cfg.links {
		rl, err := d.start(l)
		if err != nil {
			d.shutdown(0)
			return err
		}
		d.links[l.name] = rl
	}
	if _, err := d.bridge(cfg.links); err != nil {
		d.shutdown(0)
		return err
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
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		// The links run all the same; only status and reload cannot
		// reach them (on Windows: no SIGHUP either).
		log.Warn("no control socket", "err", err)
	case err != nil:
		d.shutdown(0)
		return err
	default:
		defer ctrl.Close()
	}
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
			if _, err := d.reload(); err != nil {
				log.Error("reload rejected; the running configuration stays", "err", err)
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down")
	defer onSecondSignal(log, d.drainEnder())()
	d.shutdown(5 * time.Second)
	return nil
}

// drainEnder returns what cuts every link's drain short (a second
// Ctrl-C), for the links running now: shutdown holds the lock while it
// waits, so they are taken before.
func (d *daemon) drainEnder() func() {
	d.mu.Lock()
	links := make([]*runningLink, 0, len(d.links))
	for _, rl := range d.links {
		links = append(links, rl)
	}
	d.mu.Unlock()
	return func() {
		for _, rl := range links {
			rl.node.EndDrain()
			for _, h := range rl.hops {
				h.EndDrain()
			}
		}
	}
}

// start brings one link up.
func (d *daemon) start(l *linkConf) (*runningLink, error) {
	rl := &runningLink{conf: l}
	log := d.log.With("link", l.name)
	cfg := l.cfg
	cfg.Logger = log
	if l.mode == "listen" && d.member != nil {
		// Every listen link's edges' binds are this hub's entries, the
		// links a reload adds too.
		cfg.BindWatcher = registerBinds(d.member, d.log)
	}
	if l.mode == "listen" {
		local, err := carriers.IsLoopback(l.addr)
		if err != nil {
			return nil, err
		}
		if !local && cfg.Key == nil && cfg.AuthorizedKeys == nil && l.opts.tls.ClientCAFile == "" && !l.opts.insecure {
			return nil, fmt.Errorf("%w: link %q: %s: %w", errUsage, l.name, l.addr, errNoKey)
		}
		if rl.ln, err = carriers.Listen(l.addr, l.copts...); err != nil {
			return nil, fmt.Errorf("link %q: %w", l.name, err)
		}
	}
	node, err := sockmux.NewPeer(&cfg)
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
		ds, hops, err := cascade(log, cfg, l.copts, l.opts.via, l.addrs)
		if err != nil {
			node.Close()
			return nil, err
		}
		rl.hops = hops
		connectTo(node, ds)
	default:
		ds, err := newDialers(l.addrs, l.copts)
		if err != nil {
			node.Close()
			return nil, err
		}
		connectTo(node, ds)
	}
	return rl, nil
}

func (d *daemon) startShare(sc *shareConf) (*runningShare, error) {
	cfg := sc.cfg
	cfg.Logger = d.log.With("share", sc.name)
	s, err := sockmux.NewShare(cfg)
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
