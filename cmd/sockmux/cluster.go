package main

// The hub cluster's flags (listen --cluster ...) and the config file's
// [cluster] table: both set the same clusterFlags, which make the
// cluster.Config of this hub's membership.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/internal/cluster"
)

// clusterFlags are the cluster's settings, as flags or [cluster] keys.
type clusterFlags struct {
	name      string
	bind      string
	advertise string
	seeds     []string
	provider  string
	keyFile   string
	link      string
	hubListen string
	etcd      []string
	consul    string
}

// addFlags defines the cluster's flags on f: on the command line (cli)
// as --cluster NAME and --cluster-KEY, in a [cluster] table as name and
// KEY.
func (c *clusterFlags) addFlags(f *pflag.FlagSet, cli bool) {
	name, pre := "name", ""
	if cli {
		name, pre = "cluster", "cluster-"
	}
	f.StringVar(&c.name, name, "", "make this hub a member of the hub cluster `NAME` (docs/CLUSTER.md): the -R binds its edges ask for are bound on every hub of it")
	f.StringVar(&c.bind, pre+"bind", "", "cluster: `HOST:PORT` the control plane (protoactor's remote, mutual TLS with --cluster-key) listens on")
	f.StringVar(&c.advertise, pre+"advertise", "", "cluster: `HOST:PORT` other hubs reach the control plane at, when --cluster-bind is 0.0.0.0 or ::")
	f.StringArrayVar(&c.seeds, pre+"seed", nil, "cluster, static provider: another hub's control plane `HOST:PORT` (repeatable); one is enough, the others are learned from it")
	f.StringVar(&c.provider, pre+"provider", cluster.DefaultProvider, "cluster: where the members are found: "+strings.Join(cluster.Providers, ", "))
	f.StringVar(&c.keyFile, pre+"key", "", "cluster: the cluster's pre-shared key `FILE` (sockmux keygen --psk): it authenticates and encrypts the control plane and, with a key derived from it, the links between hubs (without it they use --key-file, as the edges do); required unless --cluster-bind is loopback")
	f.StringVar(&c.link, pre+"link", "", "cluster: `ADDR` other hubs dial for this hub's links (with --cluster-key: the address of --cluster-hub-listen's listener; without: the listen ADDR; its host made --cluster-advertise's when it listens on all addresses)")
	f.StringVar(&c.hubListen, pre+"hub-listen", "", "cluster, with --cluster-key: `HOST:PORT` this hub listens on for the other hubs' links, keyed from the cluster key (default: --cluster-bind's host, a port the system picks)")
	f.StringArrayVar(&c.etcd, pre+"etcd", nil, "cluster, etcd provider: an etcd `ENDPOINT` (repeatable; default "+cluster.DefaultEtcd+")")
	f.StringVar(&c.consul, pre+"consul", "", "cluster, consul provider: the consul agent's HTTP `ADDR` (default: consul's CONSUL_HTTP_ADDR, or 127.0.0.1:8500)")
}

// errClusterFlag is a cluster flag given without --cluster.
var errClusterFlag = errors.New("applies only with --cluster NAME")

// enabled reports whether a cluster is asked for; a cluster flag without
// --cluster is an error naming it.
func (c *clusterFlags) enabled(f *pflag.FlagSet) (bool, error) {
	if c.name != "" {
		return true, nil
	}
	var err error
	f.VisitAll(func(fl *pflag.Flag) {
		if err == nil && fl.Changed && strings.HasPrefix(fl.Name, "cluster-") {
			err = flagErr(fl.Name, fmt.Errorf("%w: --%s %w", errUsage, fl.Name, errClusterFlag))
		}
	})
	return false, err
}

// config makes the cluster.Config of this hub, whose links are accepted
// on listen (a carrier address); log takes the member's logs.
func (c *clusterFlags) config(listen string, log *slog.Logger) (cluster.Config, error) {
	cfg := cluster.Config{
		Name: c.name, Bind: c.bind, Advertise: c.advertise, Provider: c.provider,
		Seeds: c.seeds, Etcd: c.etcd, Consul: c.consul, Link: c.link, Logger: log,
	}
	if c.keyFile != "" {
		k, err := readKeyFile("cluster-key", c.keyFile)
		if err != nil {
			return cfg, err
		}
		if err := engine.CheckKey(k); err != nil {
			return cfg, flagErr("cluster-key", fmt.Errorf("%w: --cluster-key %s: %w", errUsage, c.keyFile, err))
		}
		cfg.Key = k
	}
	if cfg.Link == "" && cfg.Key == nil { // with a key, the hubs' own listener's (openHubDoor)
		via := c.advertise
		if via == "" {
			via = c.bind
		}
		link, err := linkAddr(listen, via)
		if err != nil {
			return cfg, flagErr("cluster-link", fmt.Errorf("%w: --cluster-link: %w", errUsage, err))
		}
		cfg.Link = link
	}
	if err := cfg.Check(); err != nil {
		return cfg, flagErr(clusterErrFlag(err), fmt.Errorf("%w: %w", errUsage, err))
	}
	return cfg, nil
}

// clusterFlagRE finds the flag a cluster error names.
var clusterFlagRE = regexp.MustCompile(`--(cluster(?:-[a-z]+)?)\b`)

// clusterErrFlag is the flag a cluster.Config error is about.
func clusterErrFlag(err error) string {
	if m := clusterFlagRE.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return "cluster"
}

// linkAddr is where other hubs reach listen (a carrier address): listen
// itself, with the host of advertise (the control plane's advertised or
// bound host:port) when it listens on all addresses.
func linkAddr(listen, advertise string) (string, error) {
	hp := carriers.TCPAddress(listen)
	if hp == "" {
		return "", fmt.Errorf("other hubs cannot dial %s: a cluster's hubs listen on tcp://, tls://, ws:// or wss://", listen)
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen, nil
	}
	ahost, _, err := net.SplitHostPort(advertise)
	if aip := net.ParseIP(ahost); err != nil || ahost == "" || aip != nil && aip.IsUnspecified() {
		return "", fmt.Errorf("%s listens on all addresses: give --cluster-link, or --cluster-advertise for its host", listen)
	}
	return strings.Replace(listen, hp, net.JoinHostPort(ahost, port), 1), nil
}

// boundLink is link with port 0 (listen picked one) made the port the
// listener got.
func boundLink(link string, got net.Addr) string {
	hp := carriers.TCPAddress(link)
	host, port, err := net.SplitHostPort(hp)
	if err != nil || port != "0" || got == nil {
		return link
	}
	_, p, err := net.SplitHostPort(got.String())
	if err != nil {
		return link
	}
	return strings.Replace(link, hp, net.JoinHostPort(host, p), 1)
}

// readKeyFile reads a pre-shared key file, which flag names: its bytes
// trimmed of surrounding whitespace.
func readKeyFile(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, flagErr(flag, fmt.Errorf("%w: --%s: %w", errUsage, flag, err))
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return nil, flagErr(flag, fmt.Errorf("%w: --%s %s is empty", errUsage, flag, path))
	}
	return []byte(k), nil
}

// startCluster makes this hub a member, if c asks for one.
func startCluster(c *clusterFlags, cfg cluster.Config) (*cluster.Member, error) {
	if c.name == "" {
		return nil, nil
	}
	m, err := cluster.Start(cfg)
	if err != nil {
		return nil, fmt.Errorf("--cluster %s: %w", c.name, err)
	}
	return m, nil
}

// clusterConf is the config file's [cluster] table, resolved.
type clusterConf struct {
	flags clusterFlags
	cfg   cluster.Config
}

// clusterKeyLines is where keyLines keeps the lines of [cluster].
const clusterKeyLines = -2000

// resolveCluster applies the [cluster] table to the cluster's flags;
// links are the file's links, the first listen one of which the other
// hubs dial unless the table's link key says otherwise.
func resolveCluster(raw map[string]any, dir string, links []*linkConf, log *slog.Logger, at func(string, error) error) (*clusterConf, error) {
	if v, ok := raw["key"].(string); ok && v != "" && !filepath.IsAbs(v) {
		raw["key"] = filepath.Join(dir, v)
	}
	cc := &clusterConf{}
	fs := pflag.NewFlagSet("cluster", pflag.ContinueOnError)
	cc.flags.addFlags(fs, false)
	if err := applyKeys(fs, raw, "the [cluster] table", nil, nil, at); err != nil {
		return nil, err
	}
	if cc.flags.name == "" {
		return nil, at("name", errors.New("the [cluster] table needs name = NAME"))
	}
	listen := ""
	for _, l := range links {
		if l.mode == "listen" {
			listen = l.addr
			break
		}
	}
	if listen == "" && cc.flags.link == "" {
		return nil, at("name", errors.New("a cluster's hub needs a [[link]] with listen = ADDR (or link = ADDR here)"))
	}
	cfg, err := cc.flags.config(listen, log.With("cluster", cc.flags.name))
	if err != nil {
		var fe *flagError
		key := "name"
		if errors.As(err, &fe) && fe.flag != "cluster" {
			key = strings.TrimPrefix(fe.flag, "cluster-")
		}
		return nil, at(key, err)
	}
	cc.cfg = cfg
	return cc, nil
}

// clusterChanged says how the [cluster] table changed between two loads
// of the file ("" if it did not), for a reload, which leaves it as it
// runs: the membership is the hub's identity in the cluster.
func clusterChanged(was, will *clusterConf) string {
	switch {
	case was == nil && will == nil:
		return ""
	case was == nil:
		return "added"
	case will == nil:
		return "removed"
	case !reflect.DeepEqual(was.flags, will.flags):
		return "changed"
	}
	return ""
}

// registerBinds is a node's BindWatcher for member: each reverse forward
// the node listens on for its edges is this hub's entry in the directory.
func registerBinds(member *cluster.Member, log *slog.Logger) func(sockmux.ReverseBind) {
	return func(rb sockmux.ReverseBind) {
		bind := "tcp/" + rb.Asked
		if rb.UDP {
			bind = "udp/" + rb.Asked
		}
		var err error
		if rb.Members == 0 {
			err = member.Unregister(bind)
		} else {
			err = member.Register(cluster.Entry{Bind: bind, Pool: rb.Pool, Addr: rb.Addr, Members: rb.Members, Door: rb.Door})
		}
		if err != nil && !errors.Is(err, cluster.ErrClosed) {
			log.Warn("cluster: bind not registered", "bind", bind, "reason", err)
		}
	}
}

// bridgeConfig is how the hub whose node runs cfg bridges the binds of
// the other hubs: with the hubs' key (door's, or without a door the
// edges' --key-file), --remote-bind-addr and --allow-listen.
func bridgeConfig(cfg sockmux.PeerConfig, door *hubDoor, log *slog.Logger) cluster.BridgeConfig {
	key := cfg.Key
	if door != nil {
		key = door.key
	}
	return cluster.BridgeConfig{Key: key, RemoteBindAddr: cfg.RemoteBindAddr, AllowListen: cfg.AllowListen, Logger: log}
}
