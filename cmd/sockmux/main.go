// Command sockmux carries many TCP connections, in both directions, over
// one persistent link between two peers.
//
//	sockmux listen [flags] ADDR    accept links on ADDR
//	sockmux connect [flags] ADDR   keep a link to ADDR, redialling with backoff
//	                               (several ADDRs: failing over between them)
//	sockmux demo                   both peers in one process, with traffic
//
// This package is the command line and nothing else; the work is done by
// the root package's Peer and Share (github.com/sockmux/sockmux), the API
// a Go program embeds the same way.
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/cluster"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/peernode"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// errUsage marks a command line that does not parse; the exit code is 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, errBackgrounded):
		return 0
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "sockmux: %v\n", err)
		return ee.code
	case errors.Is(err, errUsage), errors.Is(err, errConfig):
		fmt.Fprintf(stderr, "sockmux: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "sockmux: %v\n", err)
		return 1
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var logLevel, logFormat string
	var verbose, quiet bool
	root := &cobra.Command{
		Use:   "sockmux",
		Short: "Carry many TCP connections, both ways, over one persistent link",
		Long: `sockmux carries many TCP connections, in both directions, over one persistent
link between two peers. One peer listens for the link, the other connects;
either may declare forwards (-L), whichever side dialled.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug|info|warn|error")
	root.PersistentFlags().StringVar(&logFormat, "log-format", "text", "log format: text|json")
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log more: everything, debug included (--log-level debug)")
	root.PersistentFlags().BoolVarP(&quiet, "quiet", "q", false, "log less: errors only (--log-level error)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		hint := ""
		var ne *pflag.NotExistError
		if errors.As(err, &ne) && ne.GetSpecifiedName() != "" {
			hint = didYouMean(ne.GetSpecifiedName(), flagNames(c.Flags(), c.InheritedFlags()), func(s string) string { return "--" + s })
		}
		return fmt.Errorf("%w: %v%s (see '%s --help')", errUsage, err, hint, c.CommandPath())
	})
	// An unknown command is a usage error (exit 2) with a suggestion; the
	// root alone shows its help.
	root.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		var names []string
		for _, sub := range c.Commands() {
			names = append(names, sub.Name())
		}
		return fmt.Errorf("%w: unknown command %q%s (see 'sockmux --help')", errUsage, args[0],
			didYouMean(args[0], names, func(s string) string { return strconv.Quote(s) }))
	}
	root.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	logger := func() (*slog.Logger, error) {
		switch {
		case verbose && quiet:
			return nil, fmt.Errorf("%w: -v and -q contradict each other", errUsage)
		case verbose:
			logLevel = "debug"
		case quiet:
			logLevel = "error"
		}
		if !validLevel(logLevel) {
			return nil, fmt.Errorf("%w: bad --log-level %q: want debug, info, warn or error", errUsage, logLevel)
		}
		return newLogger(stderr, logLevel, logFormat)
	}
	root.AddCommand(listenCmd(logger, stderr), connectCmd(logger, stderr), stdioCmd(logger), demoCmd(stdout, logger), shareCmd(logger), runCmd(stderr), checkCmd(stdout), reloadCmd(stdout), statusCmd(stdout), versionCmd(stdout), manCmd(stdout), keygenCmd(stdout))
	setVersions(root)
	setExamples(root)
	return root
}

// newLogger makes sockmux's logger: text or JSON on w, at level.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil || !validLevel(level) {
		return nil, fmt.Errorf("%w: bad log level %q: want debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		// Durations as people write them ("5s"), not as nanoseconds.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: bad log format %q: want text or json", errUsage, format)
}

func validLevel(s string) bool {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// exactlyOneAddr checks the positional ADDR.
func exactlyOneAddr(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: %s takes one ADDR (host:port), got %d arguments", errUsage, cmd.Name(), len(args))
	}
	return nil
}

// parseForwards parses every -L.
func parseForwards(specs []string, defaultBind string) ([]forward.Forward, error) {
	var out []forward.Forward
	for _, s := range specs {
		f, err := forward.ParseForwardBind(s, defaultBind)
		if err != nil {
			return nil, fmt.Errorf("%w: -L: %w", errUsage, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func listenCmd(logger func() (*slog.Logger, error), stderr io.Writer) *cobra.Command {
	var o options
	var h habits
	var cf clusterFlags
	cmd := &cobra.Command{
		Use:   "listen [flags] ADDR",
		Short: "Accept links on ADDR: host:port, tcp://, tls://, ws://, wss://, quic://, fifo:READ,WRITE or comm:PATH",
		Example: `  # a hub on all addresses; peers prove they hold the key
  head -c 32 /dev/urandom | base64 > sockmux.key
  sockmux listen --key-file sockmux.key 0.0.0.0:7000

  # TLS with a generated certificate (its fingerprint is logged)
  sockmux listen --key-file sockmux.key tls://0.0.0.0:7443

  # a WebSocket on /tunnel, behind a reverse proxy (nginx, with the Upgrade headers)
  sockmux listen --key-file sockmux.key ws://127.0.0.1:9000/tunnel

  # QUIC on UDP port 7443, with the certificate flags of tls://
  sockmux listen --key-file sockmux.key quic://0.0.0.0:7443

  # let the peer's -R listen on port 8080 of all addresses here
  sockmux listen --key-file sockmux.key --allow-listen '*:8080' 0.0.0.0:7000

  # one hub of a cluster of three (docs/CLUSTER.md): edges' -R binds are bound on every hub
  sockmux listen --key-file sockmux.key --allow-listen '*:8080' --cluster prod \
    --cluster-key cluster.key --cluster-bind 10.0.0.1:7946 --cluster-seed 10.0.0.2:7946 0.0.0.0:7000`,
		Args: exactlyOneAddr,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := h.apply(cmd.Flags()); err != nil {
				return err
			}
			if err := o.checkTLSFlags(cmd.Flags(), args[0]); err != nil {
				return err
			}
			log, cfg, copts, err := o.setup(logger)
			if err != nil {
				return err
			}
			o.followLinks(&cfg)
			local, err := carriers.IsLoopback(args[0])
			if err != nil {
				return addrErr(err)
			}
			if !local && cfg.Key == nil && cfg.AuthorizedKeys == nil && o.tls.ClientCAFile == "" && !o.insecure {
				return fmt.Errorf("%w: %s: %w", errUsage, args[0], errNoKey)
			}
			clustered, err := cf.enabled(cmd.Flags())
			if err != nil {
				return err
			}
			var ccfg cluster.Config
			if clustered {
				if ccfg, err = cf.config(args[0], log); err != nil {
					return err
				}
			}
			if h.background && !inBackground() {
				return goBackground(cmd.OutOrStdout(), stderr)
			}
			ln, err := carriers.Listen(args[0], copts...)
			if err != nil {
				return addrErr(err)
			}
			ccfg.Link = boundLink(ccfg.Link, ln.Addr())
			door, err := openHubDoor(&cf, &ccfg)
			if err != nil {
				ln.Close()
				return err
			}
			member, err := startCluster(&cf, ccfg)
			if err != nil {
				ln.Close()
				door.close()
				return err
			}
			defer door.close() // after the member has left
			var bridge *cluster.Bridge
			if member != nil {
				defer member.Close()
				door.onLost(member.LinksClosed)
				cfg.BindWatcher = registerBinds(member, log)
				bridge = cluster.NewBridge(member, bridgeConfig(cfg, door, log))
				defer bridge.Close() // before the member leaves
			}
			// Listening, and its forwards too: -f's parent may go.
			return serve(cmd.Context(), log, &o, cfg, func(n *sockmux.Peer) {
				if bridge != nil {
					bridge.Attach(peernode.Of(n)) // its pools get the other hubs' shares
				}
				if err := door.serve(n); err != nil { // the key was checked: it cannot fail
					log.Error("cluster: the other hubs' links are not served", "err", err)
				}
				n.Serve(ln)
				readyForeground()
			}, func() { ln.Close() })
		},
	}
	o.addLinkFlags(cmd.Flags())
	o.addListenFlags(cmd.Flags())
	o.addProcsFlag(cmd.Flags(), procsFollow)
	cf.addFlags(cmd.Flags(), true)
	h.addHabitFlags(cmd.Flags(), "it listens, and its forwards too")
	return cmd
}

func connectCmd(logger func() (*slog.Logger, error), stderr io.Writer) *cobra.Command {
	var o options
	var h habits
	var persist bool
	var connectTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "connect [flags] ADDR [ADDR...]",
		Short: "Keep a link to the peer at ADDR (host:port, tcp://, tls://, ws://, wss://, quic://, fifo:, comm: or exec:COMMAND), redialling with backoff; with several ADDRs, failing over between them in turn",
		Long: `Keep a link to the peer at ADDR (host:port, tcp://, tls://, ws://, wss://,
quic://, fifo:, comm: or exec:COMMAND), redialling with backoff (1 s doubling
to 30 s, with jitter) when it drops.

With several ADDRs, of any carrier kinds, the link is at one of them at a
time, and every carrier of it (--carriers, and those that resume it) goes to
that address with the same carrier flags. At the start they are tried in
order, as ssh tries a host's addresses: when one refuses or fails its
handshake the next is dialled at once; only after all of them failed in a
row does the backoff apply. A link lost for good (the peer went away, the
resume window ran out) moves to the next address after the backoff, and
from there the same rule holds; after the last comes the first. The log names the address in use (addr= on
"link up") and each move ("failing over to ADDR (n of m)").`,
		Example: `  # port 8080 here reaches port 80 of the peer's own host
  sockmux connect --key-file sockmux.key -L 8080:127.0.0.1:80 hub.example:7000

  # the peer listens on its port 2222 and sends its connections to our sshd
  sockmux connect --key-file sockmux.key -R 2222:127.0.0.1:22 hub.example:7000

  # a SOCKS5/HTTP proxy on port 1080 whose connections leave at the peer
  sockmux connect --key-file sockmux.key -D 1080 hub.example:7000

  # TLS, pinning the certificate the listener logged; stripe over 4 carriers
  sockmux connect --key-file sockmux.key --tls-fingerprint AB:CD:... --carriers 4 tls://hub.example:7443

  # two hubs: the first one that answers; when its link is lost for good, the other
  sockmux connect --key-file sockmux.key -L 8080:127.0.0.1:80 hub1.example:7000 tls://hub2.example:7443 --tls-ca ca.pem

  # a WebSocket through the reverse proxy in front of the hub, out through an HTTP proxy
  sockmux connect --key-file sockmux.key --proxy http://user:pass@proxy.corp:3128 -L 8080:127.0.0.1:80 wss://hub.example/tunnel

  # over ssh, with no port open on the far host
  sockmux connect -L 8080:127.0.0.1:80 'exec:ssh far.example sockmux stdio'

  # ssh to a host behind the hub: sockmux as ssh's ProxyCommand
  ssh -o ProxyCommand='sockmux connect --key-file sockmux.key -W %h:%p hub.example:7000' internal-host`,
		Args: someAddrs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := h.apply(cmd.Flags()); err != nil {
				return err
			}
			first := args
			if len(o.via) > 0 {
				first = o.via[:1] // the TLS flags are for the first hop's carrier
			}
			if err := o.checkTLSFlags(cmd.Flags(), first...); err != nil {
				return err
			}
			if o.stdioTarget != "" {
				if err := checkStdioForward(&o, &h); err != nil {
					return err
				}
				// Its stderr is the terminal of whoever runs it (ssh's
				// ProxyCommand): warnings and errors only, unless asked.
				if !cmd.Flags().Changed("log-level") && !cmd.Flags().Changed("verbose") {
					_ = cmd.Flags().Set("log-level", "warn")
				}
			}
			log, cfg, copts, err := o.setup(logger)
			if err != nil {
				return err
			}
			if connectTimeout < 0 {
				return flagErr("connect-timeout", fmt.Errorf("%w: --connect-timeout must not be negative", errUsage))
			}
			// Like ssh: until the first link is up, a reason retrying
			// cannot fix ends the command, and so does --connect-timeout;
			// --persist keeps retrying whatever happens.
			if !persist {
				cfg.FailFast, cfg.ConnectTimeout = true, connectTimeout
			}
			if h.background && !inBackground() {
				return goBackground(cmd.OutOrStdout(), stderr)
			}
			// The first link up (its forwards listen from the start): -f's
			// parent may go.
			onLink := cfg.OnLink
			cfg.OnLink = func(ev sockmux.LinkEvent) {
				if ev.Up {
					readyForeground()
				}
				if onLink != nil {
					onLink(ev)
				}
			}
			if len(o.via) == 0 {
				ds, err := newDialers(args, copts)
				if err != nil {
					return addrErr(err)
				}
				if o.stdioTarget != "" {
					return stdioForward(cmd.Context(), log, cfg, ds, o.stdioTarget, nil)
				}
				return serve(cmd.Context(), log, &o, cfg, func(n *sockmux.Peer) { connectTo(n, ds) }, nil)
			}
			ds, hops, err := cascade(log, cfg, copts, o.via, args)
			if err != nil {
				return err
			}
			// A relay's link that fails for good (a key it refused) ends
			// the command with its reason, as a direct link's would.
			ctx, stopWatch := watchHops(cmd.Context(), o.via, hops)
			defer stopWatch()
			if o.stdioTarget != "" {
				return stdioForward(ctx, log, cfg, ds, o.stdioTarget, func() {
					for i := len(hops) - 1; i >= 0; i-- {
						hops[i].Shutdown(0)
					}
				})
			}
			return serve(ctx, log, &o, cfg, func(n *sockmux.Peer) { connectTo(n, ds) }, func() {
				for i := len(hops) - 1; i >= 0; i-- {
					hops[i].Shutdown(o.drain)
				}
			})
		},
	}
	o.addLinkFlags(cmd.Flags())
	o.addConnectFlags(cmd.Flags())
	o.addProcsFlag(cmd.Flags(), 1)
	h.addHabitFlags(cmd.Flags(), "the first link is up and its forwards listen")
	cmd.Flags().StringVarP(&o.stdioTarget, "forward-stdio", "W", "",
		"carry stdin and stdout over one stream that the peer dials to `host:port`, as ssh -W (for ssh's ProxyCommand); exits when the stream ends")
	cmd.Flags().BoolVar(&persist, "persist", false,
		"keep redialling with backoff whatever fails, a wrong key or certificate too (a daemon's way; every link under 'sockmux run' does)")
	cmd.Flags().DurationVar(&connectTimeout, "connect-timeout", 30*time.Second,
		"without --persist: give up (exit 1) when no first link came up within this (0: no limit)")
	return cmd
}

// cascade links to each relay in turn, each link riding on a stream of the
// one before, and returns the dialers of the final link (one per address
// of finals, to fail over between, each through the last relay) and the
// hops' nodes. Every hop authenticates with the same key: authentication
// is end to end.
func cascade(log *slog.Logger, cfg sockmux.PeerConfig, copts []carriers.Option, via []string, finals []string) ([]carriers.Dialer, []*sockmux.Peer, error) {
	var hops []*sockmux.Peer
	fail := func(err error) ([]carriers.Dialer, []*sockmux.Peer, error) {
		for _, h := range hops {
			h.Close()
		}
		return nil, nil, err
	}
	d, err := carriers.NewDialer(via[0], copts...)
	if err != nil {
		return fail(addrErr(err))
	}
	hostPort := func(addr string) error {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%w: %q: after --via, addresses are host:port as the relay before sees them", errUsage, addr)
		}
		return nil
	}
	for _, addr := range append(append([]string(nil), via[1:]...), finals...) {
		if err := hostPort(addr); err != nil {
			return fail(err)
		}
	}
	for i := range via {
		hopCfg := cfg
		hopCfg.Forwards, hopCfg.Remotes, hopCfg.OnLink = nil, nil, nil
		hopCfg.Logger = log.With("hop", i+1, "relay", via[i])
		hop, err := sockmux.NewPeer(&hopCfg)
		if err != nil {
			return fail(err)
		}
		hop.Connect(d)
		hops = append(hops, hop)
		if i+1 < len(via) {
			d = &streamDialer{node: hop, target: via[i+1], via: via[i]}
		}
	}
	ds := make([]carriers.Dialer, len(finals))
	for i, addr := range finals {
		ds[i] = &streamDialer{node: hops[len(hops)-1], target: addr, via: via[len(via)-1]}
	}
	return ds, hops, nil
}

// watchHops returns ctx, ended with the failure of the first of hops
// (the relays of --via, in order) to fail for good as its cause, and a
// stop that lets the watch go.
func watchHops(ctx context.Context, via []string, hops []*sockmux.Peer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	for i, h := range hops {
		go func() {
			select {
			case err := <-h.Failed():
				cancel(fmt.Errorf("%w: --via %s (hop %d): %w", errRelayFailed, via[i], i+1, err))
			case <-ctx.Done():
			}
		}()
	}
	return ctx, func() { cancel(nil) }
}

// errRelayFailed is a --via relay's link that failed for good.
var errRelayFailed = errors.New("relay failed")

// failureOf is why ctx ended when a failure ended it (watchHops), nil when
// it was cancelled (a signal) or has not ended.
func failureOf(ctx context.Context) error {
	if c := context.Cause(ctx); errors.Is(c, errRelayFailed) {
		return c
	}
	return nil
}

// streamDialer makes a carrier out of a stream of another node's link.
type streamDialer struct {
	node        *sockmux.Peer
	target, via string
}

func (d *streamDialer) Dial(ctx context.Context) (net.Conn, error) {
	return d.node.DialStream(ctx, d.target)
}

func (d *streamDialer) String() string { return d.target + " via " + d.via }

func stdioCmd(logger func() (*slog.Logger, error)) *cobra.Command {
	var o options
	var h habits
	cmd := &cobra.Command{
		Use:   "stdio [flags]",
		Short: "Serve one link on this process's stdin and stdout (for connect 'exec:ssh host sockmux stdio')",
		Example: `  # on this host; the far host needs sockmux on its PATH, and no open port
  sockmux connect -L 5432:127.0.0.1:5432 'exec:ssh db.example sockmux stdio'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := h.apply(cmd.Flags()); err != nil {
				return err
			}
			log, cfg, _, err := o.setup(logger)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			// Its one carrier is stdin and stdout: nothing could ever join
			// the link to resume it.
			cfg.ResumeWindow = -1
			conn := carriers.Stdio(os.Stdin, os.Stdout)
			// One link: when it ends (its handshake failed, stdin ended,
			// the peer went away), so does stdio, non-zero unless the end
			// was orderly. An orphan left by a dialler that gave up would
			// otherwise live on.
			var ended <-chan error
			end := make(chan error, 1)
			err = serve(ctx, log, &o, cfg, func(n *sockmux.Peer) {
				ended = n.ServeConn(conn)
				go func() { e := <-ended; end <- e; cancel() }()
			}, nil)
			if ended != nil {
				if e := <-end; e != nil && err == nil && !errors.Is(e, sockmux.ErrPeerClosed) {
					err = e
				}
			}
			return err
		},
	}
	o.addLinkFlags(cmd.Flags())
	// stdio accepts its link (the dialler runs it): it admits peers by
	// --authorized-keys; --peer-key and --known-hosts, which pin a
	// listener, are the dialler's.
	o.addAuthorizedKeysFlag(cmd.Flags())
	o.addProcsFlag(cmd.Flags(), 1)
	h.addHabitFlags(cmd.Flags(), "") // its link is its stdin and stdout: no -f
	return cmd
}

// serve runs a node until ctx ends, redialling at once on SIGHUP, then
// shuts it down gracefully within --drain; cleanup runs last, whatever
// happened.
func serve(ctx context.Context, log *slog.Logger, o *options, cfg sockmux.PeerConfig, start func(*sockmux.Peer), cleanup func()) error {
	if cleanup != nil {
		defer cleanup()
	}
	stopProfile, err := o.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	// SIGHUP is taken before anything starts: a test (or a user) that sees
	// the first log line may signal at once, and an unregistered SIGHUP
	// would be lost or, worse, kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	node, err := sockmux.NewPeer(&cfg)
	if err != nil {
		return err
	}
	start(node)
	if o.metrics != "" {
		// The same collector as run's, over this one link.
		d := &daemon{log: log, links: map[string]*runningLink{
			"default": {conf: &linkConf{name: "default"}, node: node}}}
		srv, err := d.serveMetrics(o.metrics)
		if err != nil {
			node.Shutdown(0)
			return err
		}
		defer srv.Close()
	}
	var fatal error
	for {
		select {
		case <-hup:
			log.Info("SIGHUP: redialling links that are down")
			node.Redial()
			reloadAuthorizedKeys(log, o, node)
			continue
		case fatal = <-node.Failed():
			log.Error("exiting", "err", fatal)
		case <-ctx.Done():
			if fatal = failureOf(ctx); fatal != nil { // a relay's (watchHops), not a signal
				log.Error("exiting", "err", fatal)
			}
		}
		break
	}
	log.Info("shutting down", "drain", o.drain)
	defer onSecondSignal(log, node.EndDrain)()
	if err := node.Shutdown(o.drain); err != nil {
		return err
	}
	return fatal
}

// onSecondSignal calls endDrain at the next SIGINT or SIGTERM, as a
// second Ctrl-C does in most servers: the drain is cut short, the streams
// still open are reset. The returned stop lets the signals go.
func onSecondSignal(log *slog.Logger, endDrain func()) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
			log.Warn("signalled again: ending the drain now; open streams are reset")
			endDrain()
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
	}
}
