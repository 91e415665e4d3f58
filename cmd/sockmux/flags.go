package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/profile"
	"github.com/spf13/pflag"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/engine"
	"github.com/sockmux/sockmux/identity"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/proxy"
)

// options are the flags listen, connect and stdio share.
type options struct {
	forwards     []string
	remotes      []string
	via          []string
	dynamic      []string
	socksUser    string
	direct       []string
	allowListen  []string
	exitOnFwdErr bool
	profile      string
	keyFile      string
	identity     string // --identity FILE
	authKeys     string // --authorized-keys FILE (listen)
	peerKey      string // --peer-key PUB (connect)
	knownHosts   string // --known-hosts FILE (connect)
	trustNew     bool   // --trust-new (connect)
	maxSkew      time.Duration
	insecure     bool
	allowTargets []string
	maxStreams   int
	maxBinds     int
	maxRetries   int
	keepalive    time.Duration
	openTimeout  time.Duration
	drain        time.Duration
	metrics      string
	udpIdle      time.Duration
	udpMax       int
	carriers     int  // connect only
	dials        bool // the connect flags are in
	resumeWindow time.Duration
	gateway      bool     // -g: forwards with no bind listen on all addresses
	stdioTarget  string   // -W host:port (connect only)
	bindCarrier  []string // --bind-carrier (connect only)
	connectFlags *pflag.FlagSet
	tlsFlags     []string // the TLS flags this command has, for checkTLSFlags
	tls          carriers.TLSConfig
	proxy        string      // --proxy (proxyflag.go)
	pool         string      // --pool NAME (connect)
	remoteBind   string      // --remote-bind-addr HOST (listen)
	procs        int         // --procs N (procs.go)
	procsFlag    *pflag.Flag // --procs, to tell a default from a choice
	procsFollow  bool        // the command's default follows its links (listen)
	following    bool        // and it is in effect: followLinks sets GOMAXPROCS
}

// addLinkFlags defines the flags of every command that runs a link
// (listen, connect, stdio), which are also the keys of a [[link]] table.
func (o *options) addLinkFlags(f *pflag.FlagSet) {
	f.StringArrayVarP(&o.forwards, "local", "L", nil,
		"forward `[bind_addr:]port:host:hostport`: listen here (bind default 127.0.0.1, all addresses with -g), the peer dials host:hostport (repeatable)")
	f.StringArrayVarP(&o.remotes, "remote", "R", nil,
		"reverse forward `[bind_addr:]port:host:hostport` (or [bind_addr:]port:socks): the peer listens, this side dials host:hostport (repeatable)")
	f.StringArrayVarP(&o.dynamic, "dynamic", "D", nil,
		"SOCKS5 and HTTP proxy on `[bind_addr:]port` (default bind 127.0.0.1, all addresses with -g) whose connections leave at the peer (repeatable)")
	f.BoolVarP(&o.gateway, "gateway-ports", "g", false, "let other hosts connect to -L and -D forwards that name no bind address (they listen on all addresses, as ssh -g)")
	f.StringVar(&o.socksUser, "socks-user", "", "`USER:PASSWORD` a -D (or -R port:socks) client must give")
	f.StringArrayVar(&o.direct, "direct", nil, "`PATTERN` (host:port, * globs, CIDRs) of -D destinations dialled here, not through the tunnel (repeatable)")
	f.StringArrayVar(&o.allowListen, "allow-listen", nil,
		"`PATTERN` (host:port, * globs, CIDRs) the peer may ask this side to listen on for its -R (repeatable); default: loopback only; once any is given, only what they match (loopback too only if listed)")
	f.BoolVar(&o.exitOnFwdErr, "exit-on-forward-failure", false, "exit non-zero when the peer refuses a -R")
	f.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on `ADDR` (http://ADDR/metrics)")
	f.StringVar(&o.profile, "profile", "",
		"profile the daemon until it exits: cpu|mem|mutex|block (written to a temporary directory named in the log)")
	f.StringVar(&o.keyFile, "key-file", "", "pre-shared key `FILE` both peers must prove they hold; it encrypts the link (or SOCKMUX_KEY in the environment); make one with: sockmux keygen --psk > FILE")
	f.StringVar(&o.identity, "identity", "", "this side's private key `FILE` (from sockmux keygen): the link runs the identity handshake with a peer that has one too")
	f.DurationVar(&o.maxSkew, "max-skew", engine.DefaultMaxSkew, "largest clock difference accepted from an authenticated peer")
	f.StringArrayVar(&o.allowTargets, "allow-target", nil,
		"`PATTERN` (host:port, * globs, CIDRs) this side will dial for the peer (repeatable); default: any for an authenticated peer, loopback only otherwise")
	f.IntVar(&o.maxStreams, "max-streams", sockmux.DefaultMaxStreams, "streams open on one link at most")
	f.IntVar(&o.maxBinds, "max-binds", sockmux.DefaultMaxBinds, "reverse forwards (-R) one peer may hold open here at most")
	f.DurationVar(&o.keepalive, "keepalive", sockmux.DefaultKeepalive, "PING interval; a peer silent for 3 intervals is dropped (0: no keepalive, as ssh's ServerAliveInterval 0)")
	f.DurationVar(&o.openTimeout, "open-timeout", sockmux.DefaultOpenTimeout, "how long a forwarded connection waits for a link")
	f.DurationVar(&o.drain, "drain", 5*time.Second, "on SIGINT/SIGTERM, how long open streams may finish after GOAWAY")
	f.DurationVar(&o.udpIdle, "udp-idle", sockmux.DefaultUDPIdle, "a UDP forward's client session idle this long is closed")
	f.IntVar(&o.udpMax, "udp-max", sockmux.DefaultUDPMax, "client sessions per UDP forward at most (the least recently active is evicted)")
}

// addResumeFlag defines --resume-window, for the commands whose links can
// be resumed (not stdio: nothing could join its one carrier).
func (o *options) addResumeFlag(f *pflag.FlagSet) {
	f.DurationVar(&o.resumeWindow, "resume-window", sockmux.DefaultResumeWindow,
		"how long a link whose carriers all dropped keeps its streams for the dialler to resume it (0: no resuming)")
}

// addListenFlags defines the flags only listen takes.
func (o *options) addListenFlags(f *pflag.FlagSet) {
	o.addResumeFlag(f)
	f.BoolVar(&o.insecure, "insecure", false, "allow listening on a non-loopback address with neither a key nor client certificates")
	o.addAuthorizedKeysFlag(f)
	f.StringVar(&o.tls.CertFile, "tls-cert", "", "tls://, wss:// and quic:// only: the server's certificate `FILE` (default: one generated and kept in --state-dir)")
	f.StringVar(&o.tls.KeyFile, "tls-key", "", "tls://, wss:// and quic:// only: the private key `FILE` for --tls-cert")
	f.StringVar(&o.tls.ClientCAFile, "tls-client-ca", "", "tls://, wss:// and quic:// only: require client certificates signed by this CA `FILE`")
	// The default is resolved when it is needed, so help and man pages do
	// not show one user's home.
	f.StringVar(&o.tls.StateDir, "state-dir", "", "tls://, wss:// and quic:// only: where a generated TLS certificate is kept (default $XDG_STATE_HOME/sockmux/tls, or ~/.local/state/sockmux/tls)")
	o.tlsFlags = []string{"tls-cert", "tls-key", "tls-client-ca", "state-dir"}
	f.StringVar(&o.remoteBind, "remote-bind-addr", "",
		"bind a peer's -R that asks for all addresses (*, empty, 0.0.0.0 or ::) on this `HOST` instead, so several hubs on one machine each bind their own")
}

// addAuthorizedKeysFlag defines --authorized-keys, for the commands that
// accept links (listen, and stdio, whose link the other side dials).
func (o *options) addAuthorizedKeysFlag(f *pflag.FlagSet) {
	f.StringVar(&o.authKeys, "authorized-keys", "", "admit only the peers whose public keys this `FILE` lists (as ssh's authorized_keys, options permit-listen=, permit-target=, name=); needs --identity; SIGHUP and reload re-read it")
}

// addConnectFlags defines the flags only connect takes.
func (o *options) addConnectFlags(f *pflag.FlagSet) {
	o.dials = true
	o.addResumeFlag(f)
	f.IntVar(&o.carriers, "carriers", 1,
		fmt.Sprintf("carrier connections per link (1..%d): one stream's frames are striped across them", sockmux.MaxCarriers))
	f.StringArrayVar(&o.via, "via", nil,
		"reach ADDR through the relay peer at `RELAY` (repeatable, in order): each hop's link rides on a stream of the one before; ADDR and the later relays are host:port as the relay before them sees it")
	f.StringArrayVar(&o.bindCarrier, "bind-carrier", nil,
		"dial carriers from this local `ADDR|IFACE` (repeatable): with several, the link's carriers spread over them, so two uplinks add up (--carriers defaults to their number)")
	o.connectFlags = f
	f.StringVar(&o.pool, "pool", "",
		"share each -R with the other links that ask the listener for the same address under this pool `NAME`: it spreads their connections (a UDP -R: their clients' flows) over the live ones (fewest open streams first)")
	f.IntVar(&o.maxRetries, "max-retries", 0, "give up (exit 1) after `N` failed dials or handshakes in a row (0: retry for ever)")
	o.addProxyFlag(f)
	f.StringVar(&o.peerKey, "peer-key", "", "pin the listener's public key: its `PUB` line (sockmux-x25519 BASE64) or the base64 alone; needs --identity")
	f.StringVar(&o.knownHosts, "known-hosts", "", "pin listeners by address with this `FILE` (ADDRESS sockmux-x25519 BASE64 per line); needs --identity")
	f.BoolVar(&o.trustNew, "trust-new", false, "record the key of a listener --known-hosts does not name, instead of refusing it (ssh's StrictHostKeyChecking=accept-new)")
	f.StringVar(&o.tls.CAFile, "tls-ca", "", "tls://, wss:// and quic:// only: verify the server with this CA `FILE`")
	f.StringVar(&o.tls.Fingerprint, "tls-fingerprint", "", "tls://, wss:// and quic:// only: pin the server certificate's SHA-256 `FINGERPRINT` (sockmux check prints it)")
	f.StringVar(&o.tls.CertFile, "tls-cert", "", "tls://, wss:// and quic:// only: a client certificate `FILE`, for a listener with --tls-client-ca")
	f.StringVar(&o.tls.KeyFile, "tls-key", "", "tls://, wss:// and quic:// only: the private key `FILE` for --tls-cert")
	o.tlsFlags = []string{"tls-ca", "tls-fingerprint", "tls-cert", "tls-key"}
}

// checkTLSFlags refuses a TLS flag given for carriers that run no TLS:
// it would be ignored, and a pinned fingerprint that pins nothing is worse
// than none. With a failover list, the flags apply to the addresses that
// run TLS, so one of them must.
func (o *options) checkTLSFlags(f *pflag.FlagSet, addrs ...string) error {
	var schemes []string
	for _, addr := range addrs {
		if carriers.UsesTLS(addr) {
			return nil
		}
		scheme, err := carriers.Scheme(addr)
		if err != nil {
			return nil // the address's own error comes next
		}
		schemes = append(schemes, fmt.Sprintf("%s is %s://", addr, scheme))
	}
	for _, name := range o.tlsFlags {
		if fl := f.Lookup(name); fl != nil && fl.Changed {
			return flagErr(name, fmt.Errorf("%w: --%s applies to tls://, wss:// and quic:// carriers only, and %s", errUsage, name, strings.Join(schemes, ", ")))
		}
	}
	return nil
}

// flagError is an error in the value of one flag (or config key).
type flagError struct {
	flag string
	err  error
}

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

func flagErr(flag string, err error) error { return &flagError{flag: flag, err: err} }

// errNoKey is a non-loopback listen with nothing to authenticate peers.
var errNoKey = errors.New("refusing to listen for links on a non-loopback address without --key-file, --authorized-keys or --tls-client-ca (any peer could use the link); pass --insecure to do it anyway")

// setup reads the flags into a node configuration and carrier options.
func (o *options) setup(logger func() (*slog.Logger, error)) (*slog.Logger, sockmux.PeerConfig, []carriers.Option, error) {
	log, err := logger()
	if err != nil {
		return nil, sockmux.PeerConfig{}, nil, err
	}
	if err := o.applyProcs(); err != nil {
		return nil, sockmux.PeerConfig{}, nil, err
	}
	if o.metrics != "" {
		if err := checkListenAddr(o.metrics); err != nil {
			return nil, sockmux.PeerConfig{}, nil, flagErr("metrics", fmt.Errorf("%w: --metrics: %w", errUsage, err))
		}
	}
	cfg := sockmux.PeerConfig{Logger: log, MaxSkew: o.maxSkew, MaxStreams: o.maxStreams, MaxBinds: o.maxBinds, MaxRetries: o.maxRetries, Keepalive: o.keepalive, OpenTimeout: o.openTimeout,
		UDPIdle: o.udpIdle, UDPMax: o.udpMax, Carriers: o.carriers, ResumeWindow: o.resumeWindow}
	if cfg.Forwards, err = parseForwards(o.forwards, o.defaultBind()); err != nil {
		return nil, cfg, nil, flagErr("local", err)
	}
	for _, spec := range o.remotes {
		r, err := forward.ParseRemote(spec)
		if err != nil {
			return nil, cfg, nil, flagErr("remote", fmt.Errorf("%w: -R: %w", errUsage, err))
		}
		cfg.Remotes = append(cfg.Remotes, r)
	}
	cfg.ExitOnForwardFailure = o.exitOnFwdErr
	if cfg.Pool, cfg.RemoteBindAddr, err = o.poolFlags(); err != nil {
		return nil, cfg, nil, err
	}
	for _, d := range o.dynamic {
		bind, err := parseDynamic(d, o.defaultBind())
		if err != nil {
			return nil, cfg, nil, flagErr("dynamic", err)
		}
		cfg.Dynamic = append(cfg.Dynamic, bind)
	}
	if err := localConflicts(cfg.Forwards, cfg.Dynamic); err != nil {
		return nil, cfg, nil, err
	}
	if o.socksUser != "" {
		user, pass, ok := strings.Cut(o.socksUser, ":")
		if !ok || user == "" {
			return nil, cfg, nil, flagErr("socks-user", fmt.Errorf("%w: --socks-user wants USER:PASSWORD", errUsage))
		}
		cfg.ProxyAuth = &proxy.ProxyAuth{User: user, Password: pass}
	}
	if len(o.direct) > 0 {
		if cfg.Direct, err = forward.ParseTargetPolicy(o.direct...); err != nil {
			return nil, cfg, nil, flagErr("direct", fmt.Errorf("%w: --direct: %w", errUsage, err))
		}
	}
	if len(o.allowListen) > 0 {
		if cfg.AllowListen, err = forward.ParseTargetPolicy(o.allowListen...); err != nil {
			return nil, cfg, nil, flagErr("allow-listen", fmt.Errorf("%w: --allow-listen: %w", errUsage, err))
		}
		log.Info("--allow-listen replaces the loopback-only default: the peer's -R may listen only where these patterns allow",
			"allow_listen", o.allowListen)
	}
	if cfg.Key, err = o.key(); err != nil {
		return nil, cfg, nil, flagErr("key-file", err)
	}
	if err := o.identities(&cfg); err != nil {
		return nil, cfg, nil, err
	}
	if len(o.allowTargets) > 0 {
		if cfg.AllowTargets, err = forward.ParseTargetPolicy(o.allowTargets...); err != nil {
			return nil, cfg, nil, flagErr("allow-target", fmt.Errorf("%w: --allow-target: %w", errUsage, err))
		}
	}
	for name, d := range map[string]time.Duration{"--max-skew": o.maxSkew, "--open-timeout": o.openTimeout, "--drain": o.drain,
		"--udp-idle": o.udpIdle, "--resume-window": o.resumeWindow} {
		if d < 0 {
			return nil, cfg, nil, flagErr(name[2:], fmt.Errorf("%w: %s must not be negative", errUsage, name))
		}
	}
	// A zero that would silently mean the default is refused: the user
	// asked for something else.
	for name, d := range map[string]time.Duration{"--max-skew": o.maxSkew, "--open-timeout": o.openTimeout, "--udp-idle": o.udpIdle} {
		if d == 0 {
			return nil, cfg, nil, flagErr(name[2:], fmt.Errorf("%w: %s 0: want a duration above 0", errUsage, name))
		}
	}
	if o.udpMax < 1 {
		return nil, cfg, nil, flagErr("udp-max", fmt.Errorf("%w: --udp-max must be at least 1", errUsage))
	}
	if o.maxStreams < 1 {
		return nil, cfg, nil, flagErr("max-streams", fmt.Errorf("%w: --max-streams must be at least 1", errUsage))
	}
	if o.maxRetries < 0 {
		return nil, cfg, nil, flagErr("max-retries", fmt.Errorf("%w: --max-retries must not be negative", errUsage))
	}
	if o.maxBinds < 1 {
		return nil, cfg, nil, flagErr("max-binds", fmt.Errorf("%w: --max-binds must be at least 1", errUsage))
	}
	if o.keepalive <= 0 {
		cfg.Keepalive = -1 // off
	}
	if o.resumeWindow == 0 {
		cfg.ResumeWindow = -1 // off
	}
	if o.dials && (o.carriers < 1 || o.carriers > sockmux.MaxCarriers) {
		return nil, cfg, nil, flagErr("carriers", fmt.Errorf("%w: --carriers must be 1..%d, not %d", errUsage, sockmux.MaxCarriers, o.carriers))
	}
	copts, err := o.carrierOptions(log)
	if err != nil {
		return nil, cfg, nil, err
	}
	if len(o.bindCarrier) > 0 {
		var binds []carriers.LocalBind
		for _, s := range o.bindCarrier {
			b, err := carriers.ParseLocalBind(s)
			if err != nil {
				return nil, cfg, nil, flagErr("bind-carrier", fmt.Errorf("%w: --bind-carrier: %w", errUsage, err))
			}
			binds = append(binds, b)
		}
		copts = append(copts, carriers.WithLocalBinds(binds))
		if o.connectFlags != nil && !o.connectFlags.Changed("carriers") {
			cfg.Carriers = min(len(binds), sockmux.MaxCarriers)
		}
	}
	return log, cfg, copts, nil
}

// identities reads --identity, --authorized-keys, --peer-key,
// --known-hosts and --trust-new into cfg.
func (o *options) identities(cfg *sockmux.PeerConfig) error {
	if o.identity != "" {
		k, err := identity.LoadPrivateKey(o.identity)
		if err != nil {
			return flagErr("identity", fmt.Errorf("%w: --identity: %w", errUsage, err))
		}
		cfg.Identity = k
	}
	need := func(flag string) error {
		return flagErr(flag, fmt.Errorf("%w: --%s: %w", errUsage, flag, sockmux.ErrNeedIdentity))
	}
	if o.authKeys != "" {
		if cfg.Identity == nil {
			return need("authorized-keys")
		}
		ak, err := identity.LoadAuthorizedKeys(o.authKeys)
		if err != nil {
			return flagErr("authorized-keys", fmt.Errorf("%w: --authorized-keys: %w", errUsage, err))
		}
		cfg.AuthorizedKeys = ak
	}
	if o.peerKey != "" {
		if cfg.Identity == nil {
			return need("peer-key")
		}
		k, _, err := identity.ParsePublicKey(o.peerKey)
		if err != nil {
			return flagErr("peer-key", fmt.Errorf("%w: --peer-key: %w", errUsage, err))
		}
		cfg.PeerKey = &k
	}
	if o.knownHosts != "" {
		if cfg.Identity == nil {
			return need("known-hosts")
		}
		if _, err := identity.LoadKnownHosts(o.knownHosts); err != nil {
			return flagErr("known-hosts", fmt.Errorf("%w: --known-hosts: %w", errUsage, err))
		}
		cfg.KnownHosts = o.knownHosts
	}
	if o.trustNew {
		if o.knownHosts == "" {
			return flagErr("trust-new", fmt.Errorf("%w: --trust-new records the key in --known-hosts FILE: give one", errUsage))
		}
		cfg.TrustNew = true
	}
	return nil
}

// key is the pre-shared key from --key-file or SOCKMUX_KEY (nil for none).
func (o *options) key() ([]byte, error) {
	var k string
	switch {
	case o.keyFile != "":
		b, err := readKeyFile("key-file", o.keyFile)
		if err != nil {
			return nil, err
		}
		k = string(b)
	case os.Getenv("SOCKMUX_KEY") != "":
		k = os.Getenv("SOCKMUX_KEY")
	default:
		return nil, nil
	}
	if err := engine.CheckKey([]byte(k)); err != nil {
		src := "SOCKMUX_KEY"
		if o.keyFile != "" {
			src = "--key-file " + o.keyFile
		}
		return nil, fmt.Errorf("%w: %s: %w", errUsage, src, err)
	}
	return []byte(k), nil
}

// startProfile starts the profile o.profile names and returns its stop.
func (o *options) startProfile() (func(), error) {
	var mode func(*profile.Profile)
	switch o.profile {
	case "":
		return func() {}, nil
	case "cpu":
		mode = profile.CPUProfile
	case "mem":
		mode = profile.MemProfile
	case "mutex":
		mode = profile.MutexProfile
	case "block":
		mode = profile.BlockProfile
	default:
		return nil, fmt.Errorf("%w: bad --profile %q: want cpu, mem, mutex or block", errUsage, o.profile)
	}
	p := profile.Start(mode, profile.NoShutdownHook)
	return p.Stop, nil
}

// addrErr marks a bad carrier address, TLS configuration or proxy as a
// usage error.
func addrErr(err error) error {
	if errors.Is(err, carriers.ErrBadAddress) || errors.Is(err, carriers.ErrTLSConfig) || errors.Is(err, carriers.ErrBadProxy) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}

// defaultBind is where a -L or -D that names no address listens.
func (o *options) defaultBind() string {
	if o.gateway {
		return "0.0.0.0"
	}
	return forward.DefaultBind
}

// parseDynamic turns a -D "[bind_addr:]port" into host:port.
func parseDynamic(spec, defaultBind string) (string, error) {
	host, port := defaultBind, spec
	if h, p, err := net.SplitHostPort(spec); err == nil {
		host, port = h, p
		if host == "" || host == "*" {
			host = "0.0.0.0"
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%w: -D %q: want [bind_addr:]port", errUsage, spec)
	}
	return net.JoinHostPort(host, port), nil
}

// poolFlags checks --pool and --remote-bind-addr.
func (o *options) poolFlags() (pool, remoteBind string, err error) {
	if o.pool != "" {
		if !engine.ValidPoolName(o.pool) {
			return "", "", flagErr("pool", fmt.Errorf("%w: --pool %q: a pool name is 1 to %d letters, digits, '-', '_' or '.'", errUsage, o.pool, engine.MaxPoolName))
		}
	}
	if h := o.remoteBind; h != "" {
		if strings.ContainsAny(h, ":/ ") && net.ParseIP(h) == nil || strings.HasPrefix(h, "[") {
			return "", "", flagErr("remote-bind-addr", fmt.Errorf("%w: --remote-bind-addr %q: want a host or IP address, no port", errUsage, h))
		}
	}
	return o.pool, o.remoteBind, nil
}

// localConflicts refuses two -L or -D that would listen on the same
// address, before anything listens (a config file's are checked the same
// way, checkConflicts); port 0, a port the system picks, is never taken
// twice.
func localConflicts(fwds []forward.Forward, dynamic []string) error {
	seen := map[string]string{}
	claim := func(flag, spec, addr string) error {
		if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
			return nil
		}
		if prev, ok := seen[addr]; ok {
			return flagErr(flag, fmt.Errorf("%w: %w: %s %s listens where %s does", errUsage, errConflict, flag, spec, prev))
		}
		seen[addr] = flag + " " + spec
		return nil
	}
	for _, f := range fwds {
		proto := "tcp/"
		if f.UDP {
			proto = "udp/"
		}
		if err := claim("-L", f.String(), proto+f.Bind); err != nil {
			return err
		}
	}
	for _, d := range dynamic {
		if err := claim("-D", d, "tcp/"+d); err != nil {
			return err
		}
	}
	return nil
}

// checkListenAddr refuses an address that cannot be listened on as
// written (no port, a port out of range) before anything starts.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port (such as 127.0.0.1:9100): %w", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}
