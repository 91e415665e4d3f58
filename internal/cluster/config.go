package cluster

// A member's configuration, its defaults and its checks.

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
)

// Defaults of Config.
const (
	DefaultProvider       = "static"
	DefaultProbe          = time.Second
	DefaultProbeFailures  = 3
	DefaultRefresh        = 10 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultEtcd           = "127.0.0.1:2379"
)

// Providers names the cluster providers Config.Provider may choose.
var Providers = []string{"static", "etcd", "consul", "k8s"}

// Config is one hub's membership of a cluster.
type Config struct {
	// Name is the cluster's name (--cluster): members of clusters with
	// different names never talk (the TLS credentials are derived with
	// it) and the etcd, consul and k8s providers register under it.
	Name string
	// Bind is host:port the control plane (protoactor's remote) listens
	// on (--cluster-bind); port 0 picks one.
	Bind string
	// Advertise is host:port other members reach the control plane at
	// (--cluster-advertise), if not Bind: required when Bind's host is
	// 0.0.0.0 or ::.
	Advertise string
	// Provider names the membership provider (--cluster-provider), one
	// of Providers; "static" if empty.
	Provider string
	// Seeds are other members' control-plane addresses, for the static
	// provider (--cluster-seed).
	Seeds []string
	// Etcd lists the etcd endpoints of the etcd provider
	// (--cluster-etcd); DefaultEtcd if empty.
	Etcd []string
	// Consul is the consul agent's HTTP address for the consul provider
	// (--cluster-consul); if empty, consul's own default
	// (CONSUL_HTTP_ADDR, else 127.0.0.1:8500).
	Consul string
	// Key is the cluster's key (--cluster-key): the control plane's TLS
	// credentials are derived from it. Required unless Bind is loopback.
	Key []byte
	// Link is where other hubs dial this hub's sockmux listener, put in
	// the entries this member registers that do not name one. With Key,
	// the static provider gives it in its probes' answers, and the other
	// members judge this hub's health by a link to it (health.go): it
	// must be a listener served with HubLinkKey's key.
	Link string
	// Probe is how often the static provider probes each member, and
	// how long it waits for an answer; ProbeFailures how many probes in
	// a row a member may miss before it leaves the membership.
	Probe         time.Duration
	ProbeFailures int
	// Refresh is how often the member registers its entries again and
	// reads the directory, besides after every membership change.
	Refresh time.Duration
	// RequestTimeout bounds one request to the directory grain.
	RequestTimeout time.Duration
	// Logger takes the member's logs (protoactor's, one level down);
	// nil discards them.
	Logger *slog.Logger
	// ClusterProvider, if set, is used instead of the one Provider
	// names (tests use protoactor's in-memory test provider).
	ClusterProvider cluster.ClusterProvider
}

// Check reports what is wrong with c, as Start would, without starting
// anything: the error names the flag.
func (c Config) Check() error {
	c, err := c.withDefaults()
	if err != nil {
		return err
	}
	if c.Key != nil {
		if _, err := deriveCredentials(c.Key, c.Name); err != nil {
			return fmt.Errorf("--cluster-key: %w", err)
		}
	}
	return nil
}

// withDefaults fills in what c leaves out and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Provider == "" {
		c.Provider = DefaultProvider
	}
	if c.Probe <= 0 {
		c.Probe = DefaultProbe
	}
	if c.ProbeFailures <= 0 {
		c.ProbeFailures = DefaultProbeFailures
	}
	if c.Refresh <= 0 {
		c.Refresh = DefaultRefresh
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if len(c.Etcd) == 0 {
		c.Etcd = []string{DefaultEtcd}
	}
	if c.Name == "" {
		return c, fmt.Errorf("%w: --cluster: no cluster name", ErrConfig)
	}
	if len(c.Name) > maxField {
		return c, fmt.Errorf("%w: --cluster: a name of %d bytes, at most %d", ErrConfig, len(c.Name), maxField)
	}
	if c.ClusterProvider == nil && !slices.Contains(Providers, c.Provider) {
		return c, fmt.Errorf("%w: --cluster-provider %q: not one of %v", ErrConfig, c.Provider, Providers)
	}
	host, _, err := splitHostPort("--cluster-bind", c.Bind)
	if err != nil {
		return c, err
	}
	if c.Advertise != "" {
		if _, _, err := splitHostPort("--cluster-advertise", c.Advertise); err != nil {
			return c, err
		}
	} else if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return c, fmt.Errorf("%w: --cluster-bind %s listens on every address: give --cluster-advertise, the address other hubs reach", ErrConfig, c.Bind)
	}
	for _, s := range c.Seeds {
		if _, _, err := splitHostPort("--cluster-seed", s); err != nil {
			return c, err
		}
	}
	if c.Key == nil && !isLoopback(host) {
		return c, fmt.Errorf("%w (--cluster-bind %s)", ErrNoKey, c.Bind)
	}
	return c, nil
}

// splitHostPort splits addr, a host:port the flag named gave.
func splitHostPort(flag, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s %q: %w", ErrConfig, flag, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: %s %q: bad port", ErrConfig, flag, addr)
	}
	return host, port, nil
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
