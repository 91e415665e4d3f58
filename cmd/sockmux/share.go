package main

import (
	"errors"
	"fmt"
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
	"github.com/sockmux/sockmux/internal/forward"
)

// shareFlags are the flags of sockmux share.
type shareFlags struct {
	listen       string
	upstream     string
	clientBuffer string
	slow         string
	slowTimeout  time.Duration
	replay       string
	o            options // the key and TLS of a tunnel: upstream's link
	fs           *pflag.FlagSet
}

func shareCmd(logger func() (*slog.Logger, error)) *cobra.Command {
	var sf shareFlags
	cmd := &cobra.Command{
		Use:   "share --listen [bind:]port --upstream UPSTREAM [flags]",
		Short: "Let many local clients share one upstream connection (tcp://, fifo:, exec: or tunnel:)",
		Long: `share listens for clients on --listen and keeps one connection to UPSTREAM.
What the upstream sends goes to every client; what any client sends goes
upstream, one read of a client at a time, never interleaved with another
client's bytes. What waits for each client is bounded by --client-buffer.
When a client's buffer is full, by default (--slow wait) share stops reading
the upstream, so TCP pushes back on it, until that client has drained half
of it; a client whose buffer stays full for --slow-timeout is disconnected
(and logged) and the others carry on. No client loses data: each one gets
everything, or is disconnected. With --slow drop a slow client instead has
its oldest data dropped (and counted), with --slow disconnect it is
disconnected at once: either way the upstream and the others never wait.

UPSTREAM is one of
  tcp://host:port             a TCP server (redialled with backoff when it drops)
  fifo:READ_PATH,WRITE_PATH   a pair of named pipes, made when absent: share reads
                              the first and writes the second (reopened when the
                              far end goes away)
  exec:COMMAND                the stdout and stdin of COMMAND run with sh -c
                              (run again, with backoff, when it exits)
  tunnel:ADDR,host:port       host:port as dialled by the sockmux peer at ADDR
                              (any carrier ADDR of connect), over a link to it`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: share takes no arguments, got %q (name the upstream with --upstream)", errUsage, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			cfg, err := sf.config(log)
			if err != nil {
				return err
			}
			s, err := sockmux.NewShare(cfg)
			if err != nil {
				if errors.Is(err, sockmux.ErrBadUpstream) {
					return fmt.Errorf("%w: --upstream: %w", errUsage, err)
				}
				return err
			}
			if host, _, _ := net.SplitHostPort(cfg.Listen); !isLoopbackHost(host) {
				log.Warn("share listening beyond loopback: anyone who reaches it reads and writes the upstream session", "listen", s.Addr().String())
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			ctx := cmd.Context()
			for {
				select {
				case <-hup:
					log.Info("SIGHUP: redialling the upstream if it is down")
					s.Redial()
					continue
				case err := <-s.Failed():
					log.Error("exiting", "err", err)
					s.Close()
					return err
				case <-ctx.Done():
				}
				break
			}
			log.Info("shutting down")
			return s.Close()
		},
	}
	sf.addFlags(cmd.Flags())
	return cmd
}

// addFlags defines share's flags on f (also the keys of a [[share]] table).
func (sf *shareFlags) addFlags(f *pflag.FlagSet) {
	f.StringVar(&sf.listen, "listen", "", "where clients connect: `[bind:]port` (bind default 127.0.0.1; * or empty means all addresses)")
	f.StringVar(&sf.upstream, "upstream", "", "what the clients share, `UPSTREAM`: tcp://host:port, fifo:READ_PATH,WRITE_PATH, exec:COMMAND or tunnel:ADDR,host:port")
	f.StringVar(&sf.clientBuffer, "client-buffer", "1MiB", "per client, the most upstream bytes waiting for it (`SIZE`: bytes, or with K/KiB, M/MiB, G/GiB; binary)")
	f.StringVar(&sf.slow, "slow", "wait", "what a client whose buffer is full gets, `wait|drop|disconnect`: the upstream waits for it (up to --slow-timeout), its oldest data dropped (and counted), or disconnected")
	f.DurationVar(&sf.slowTimeout, "slow-timeout", sockmux.DefaultSlowTimeout, "with --slow wait, how long a client's buffer may stay full before the client is disconnected (a `DURATION` such as 10s)")
	f.StringVar(&sf.replay, "replay", "0", "a new client first receives the last `SIZE` bytes the upstream sent (at most --client-buffer)")
	f.StringVar(&sf.o.keyFile, "key-file", "", "tunnel: pre-shared key `FILE` of the link (or SOCKMUX_KEY in the environment)")
	f.StringVar(&sf.o.identity, "identity", "", "tunnel: this side's private key `FILE` (from sockmux keygen), for the identity handshake with the peer")
	f.StringVar(&sf.o.peerKey, "peer-key", "", "tunnel: pin the peer's public key: its `PUB` line (sockmux-x25519 BASE64) or the base64 alone; needs --identity")
	f.StringVar(&sf.o.knownHosts, "known-hosts", "", "tunnel: pin the peer by address with this `FILE` (ADDRESS sockmux-x25519 BASE64 per line); needs --identity")
	f.BoolVar(&sf.o.trustNew, "trust-new", false, "tunnel: record the key of a peer --known-hosts does not name, instead of refusing it")
	f.StringVar(&sf.o.tls.CAFile, "tls-ca", "", "tunnel: verify a tls:// peer with this CA `FILE`")
	f.StringVar(&sf.o.tls.Fingerprint, "tls-fingerprint", "", "tunnel: pin a tls:// peer's certificate SHA-256 `FINGERPRINT`")
	f.StringVar(&sf.o.tls.CertFile, "tls-cert", "", "tunnel: client certificate `FILE` for a tls:// peer")
	f.StringVar(&sf.o.tls.KeyFile, "tls-key", "", "tunnel: private key `FILE` for --tls-cert")
	sf.o.addProxyFlag(f)
	sf.fs = f
}

// lookup is the flag called name, or nil.
func (sf *shareFlags) lookup(name string) *pflag.Flag {
	if sf.fs == nil {
		return nil
	}
	return sf.fs.Lookup(name)
}

// config checks the flags and makes the share's configuration.
func (sf *shareFlags) config(log *slog.Logger) (sockmux.ShareConfig, error) {
	var cfg sockmux.ShareConfig
	usage := func(format string, args ...any) (sockmux.ShareConfig, error) {
		return cfg, fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
	}
	if sf.listen == "" {
		return usage("--listen [bind:]port is required")
	}
	listen, err := parseShareListen(sf.listen)
	if err != nil {
		return usage("--listen %q: %v", sf.listen, err)
	}
	if sf.upstream == "" {
		return usage("--upstream is required (tcp://host:port, fifo:READ_PATH,WRITE_PATH, exec:COMMAND or tunnel:ADDR,host:port)")
	}
	cb, err := parseSize(sf.clientBuffer)
	if err != nil || cb < 1 {
		return usage("--client-buffer %q: want a size of at least 1 byte (such as 65536, 64KiB or 1MiB)", sf.clientBuffer)
	}
	replay, err := parseSize(sf.replay)
	if err != nil {
		return usage("--replay %q: want a size (such as 0, 4096 or 16KiB)", sf.replay)
	}
	if replay > cb {
		return usage("--replay %s is more than --client-buffer %s", sf.replay, sf.clientBuffer)
	}
	slow, err := sockmux.ParseSlowPolicy(sf.slow)
	if err != nil {
		return usage("--slow: %v", err)
	}
	if sf.slowTimeout <= 0 {
		return usage("--slow-timeout %v: want a duration above 0 (such as 10s)", sf.slowTimeout)
	}
	if slow != sockmux.SlowWait && sf.fs != nil && sf.fs.Changed("slow-timeout") {
		return usage("--slow-timeout applies only to --slow wait, not --slow %s", slow)
	}
	key, err := sf.o.key()
	if err != nil {
		return cfg, err
	}
	// As connect's: a reason retrying cannot fix (a key the peer refuses)
	// ends the share before its link was ever up.
	node := sockmux.PeerConfig{Key: key, FailFast: true}
	if err := sf.o.identities(&node); err != nil {
		return cfg, err
	}
	copts, err := sf.o.carrierOptions(log)
	if err != nil {
		return cfg, err
	}
	kind, err := sockmux.UpstreamKind(sf.upstream, copts...)
	if err != nil {
		return usage("--upstream: %v", err)
	}
	if kind == "tunnel" {
		// The TLS flags are the tunnel link's carrier's: a tcp:// link
		// would ignore them.
		addr := strings.TrimPrefix(sf.upstream, "tunnel:")
		if i := strings.LastIndex(addr, ","); i >= 0 {
			addr = addr[:i]
		}
		if !carriers.UsesTLS(addr) {
			for _, name := range []string{"tls-ca", "tls-fingerprint", "tls-cert", "tls-key"} {
				if fl := sf.lookup(name); fl != nil && fl.Changed {
					return usage("--%s applies to a tunnel: over tls://, wss:// or quic://, and %s is not one", name, addr)
				}
			}
		}
	}
	if kind != "tunnel" {
		// A key or identity flag would be ignored: say so rather than
		// leave the user believing the upstream is protected.
		for _, name := range []string{"key-file", "identity", "peer-key", "known-hosts", "trust-new", "tls-ca", "tls-fingerprint", "tls-cert", "tls-key"} {
			if fl := sf.lookup(name); fl != nil && fl.Changed {
				return usage("--%s applies to a tunnel: upstream only, and %s is %s:", name, sf.upstream, kind)
			}
		}
	}
	return sockmux.ShareConfig{
		Logger: log, Listen: listen, Upstream: sf.upstream, CarrierOptions: copts,
		ClientBuffer: cb, Slow: slow, SlowTimeout: sf.slowTimeout, Replay: replay,
		Tunnel: node,
	}, nil
}

// parseShareListen parses "[bind:]port" into host:port.
func parseShareListen(s string) (string, error) {
	host, port := forward.DefaultBind, s
	if strings.HasPrefix(s, "[") || strings.Contains(s, ":") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", err
		}
		host, port = h, p
		if host == "" || host == "*" {
			host = "0.0.0.0"
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("%q is not a port", port)
	}
	return net.JoinHostPort(host, port), nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseSize parses a byte count: a number, optionally followed by K, M or
// G (with or without "iB" or "B"), all powers of 1024.
func parseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	mult := 1
	lower := strings.ToLower(t)
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(lower, u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	if n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is too big", s)
	}
	return n * mult, nil
}
