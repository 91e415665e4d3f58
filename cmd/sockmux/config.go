package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
)

// errConfig marks a configuration file that does not validate.
var errConfig = errors.New("bad configuration")

// Classes of configuration error, for errors.Is.
var (
	errUnknownKey = errors.New("unknown key")
	errConflict   = errors.New("conflicting forward")
)

// configError is a configuration error at a line of the file, in a key.
type configError struct {
	Path string
	Line int    // 0 when no line applies
	Key  string // "" when no key applies
	Err  error
}

func (e *configError) Error() string {
	// A flag's own message starts "usage: " on the command line; in a file
	// the position says enough.
	msg := strings.TrimPrefix(e.Err.Error(), errUsage.Error()+": ")
	where := e.Path
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", e.Path, e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", where, e.Key, msg)
	}
	return fmt.Sprintf("%s: %s", where, msg)
}

func (e *configError) Is(target error) bool { return target == errConfig }
func (e *configError) Unwrap() error        { return e.Err }

// fileConfig is the TOML file: a few process-wide keys and the links. Each
// [[link]] table takes "name", one of "listen" or "connect" (the ADDR; for
// connect, a list of them too, to fail over between in turn), and
// every flag of that command under its long name ("local" for -L, "remote"
// for -R, "dynamic" for -D, "key-file", "allow-target", ...). Lists are
// TOML arrays; durations are strings such as "15s".
type fileConfig struct {
	LogLevel  string           `toml:"log-level"`
	LogFormat string           `toml:"log-format"`
	Metrics   string           `toml:"metrics"`
	Control   string           `toml:"control"`
	Link      []map[string]any `toml:"link"`
	Share     []map[string]any `toml:"share"`
	Cluster   map[string]any   `toml:"cluster"`
}

// notInFile are flags of connect or listen that a config file's link does
// not take, and why.
var notInFile = map[string]string{
	"connect-timeout": "does not apply under sockmux run, whose links keep redialling (max-retries bounds them)",
	"persist":         "is how every link under sockmux run redials already",
	"no-command":      "is a command-line habit (ssh's -N); sockmux run has no command to leave out",
	"background":      "is a command-line habit (ssh's -f); run sockmux run as a service instead",
	"forward-stdio":   "carries one command's stdin and stdout; it has no place in sockmux run",
}

// topLevelWants says, for each of fileConfig's keys, what it takes.
var topLevelWants = map[string]string{
	"log-level": `a string ("debug", "info", "warn" or "error")`, "log-format": `a string ("text" or "json")`,
	"metrics": `a string, host:port (such as "127.0.0.1:9100")`, "control": "a string, the control socket's path",
	"link": "[[link]] tables", "share": "[[share]] tables", "cluster": "a [cluster] table",
}

// topLevelKeys are fileConfig's keys, for suggestions.
var topLevelKeys = []string{"log-level", "log-format", "metrics", "control", "link", "share", "cluster"}

// shareConf is one [[share]], resolved: a name and every flag of
// sockmux share as a key.
type shareConf struct {
	name string
	cfg  sockmux.ShareConfig
	raw  map[string]any
}

// linkConf is one [[link]], resolved.
type linkConf struct {
	name    string
	mode    string   // "listen" or "connect"
	addr    string   // the listen address, or the first of addrs
	addrs   []string // connect's failover list (listen: addr alone)
	opts    *options
	cfg     sockmux.PeerConfig
	copts   []carriers.Option
	raw     map[string]any
	lines   map[string]int
	section int // the line of its [[link]]
}

// config is a validated configuration file.
type config struct {
	path                string
	logLevel, logFormat string
	metrics, control    string
	links               []*linkConf
	shares              []*shareConf
	cluster             *clusterConf // nil: no [cluster]
}

// loadConfig reads and validates path. Every error names the file, the
// line and the key.
func loadConfig(path string, log *slog.Logger) (*config, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: a config file is required: -c FILE", errUsage)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &configError{Path: path, Err: err}
	}
	lines := keyLines(data)
	at := func(link int, key string, err error) error {
		return &configError{Path: path, Line: lines[link][key], Key: key, Err: err}
	}
	var fc fileConfig
	dec := toml.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		var strict *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case errors.As(err, &strict) && len(strict.Errors) > 0:
			e := strict.Errors[0]
			row, _ := e.Position()
			key := e.Key()
			return nil, &configError{Path: path, Line: row, Key: strings.Join(key, "."),
				Err: fmt.Errorf("%w%s", errUnknownKey, didYouMean(key[len(key)-1], topLevelKeys, strconv.Quote))}
		case errors.As(err, &de):
			row, _ := de.Position()
			if key := strings.Join(de.Key(), "."); topLevelWants[key] != "" {
				// A value of the wrong kind: say what the key wants, not
				// which Go field the decoder could not fill.
				return nil, &configError{Path: path, Line: row, Key: key, Err: fmt.Errorf("want %s", topLevelWants[key])}
			}
			return nil, &configError{Path: path, Line: row, Err: de}
		}
		return nil, &configError{Path: path, Err: err}
	}
	c := &config{path: path, logLevel: fc.LogLevel, logFormat: fc.LogFormat, metrics: fc.Metrics, control: fc.Control}
	if c.logLevel == "" {
		c.logLevel = "info"
	}
	if !validLevel(c.logLevel) {
		return nil, at(-1, "log-level", fmt.Errorf("%q: want debug, info, warn or error", c.logLevel))
	}
	if c.logFormat != "" && c.logFormat != "text" && c.logFormat != "json" {
		return nil, at(-1, "log-format", fmt.Errorf("%q: want text or json", c.logFormat))
	}
	if c.metrics != "" {
		if err := checkListenAddr(c.metrics); err != nil {
			return nil, at(-1, "metrics", err)
		}
	}
	if c.control == "" {
		if dir, err := carriers.DefaultStateDir(); err == nil {
			c.control = filepath.Join(filepath.Dir(dir), "sockmux.sock")
		}
	}
	if len(fc.Link) == 0 && len(fc.Share) == 0 {
		return nil, &configError{Path: path, Err: errors.New("no [[link]] or [[share]]")}
	}
	dir := filepath.Dir(path)
	for _, raw := range fc.Link {
		resolvePaths(raw, dir)
	}
	for _, raw := range fc.Share {
		resolvePaths(raw, dir)
	}
	for i, raw := range fc.Share {
		sc, err := resolveShare(i, raw, log, func(key string, err error) error {
			return &configError{Path: path, Line: lines[shareIndex(i)][key], Key: key, Err: err}
		})
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(c.shares, func(o *shareConf) bool { return o.name == sc.name }) {
			return nil, &configError{Path: path, Line: lines[shareIndex(i)]["name"], Key: "name", Err: fmt.Errorf("share %q is named twice", sc.name)}
		}
		c.shares = append(c.shares, sc)
	}
	names := map[string]bool{}
	for i, raw := range fc.Link {
		l, err := resolveLink(i, raw, log, func(key string, err error) error { return at(i, key, err) })
		if err != nil {
			return nil, err
		}
		if names[l.name] {
			return nil, at(i, "name", fmt.Errorf("link %q is named twice", l.name))
		}
		names[l.name] = true
		l.lines = lines[i]
		c.links = append(c.links, l)
	}
	if err := c.checkConflicts(at); err != nil {
		return nil, err
	}
	if fc.Cluster != nil {
		cc, err := resolveCluster(fc.Cluster, dir, c.links, log, func(key string, err error) error {
			return &configError{Path: path, Line: lines[clusterKeyLines][key], Key: "cluster." + key, Err: err}
		})
		if err != nil {
			return nil, err
		}
		c.cluster = cc
	}
	return c, nil
}

// resolveLink applies one [[link]] table to the flags of its command, so
// every flag is a key of the same name with the same checks.
func resolveLink(i int, raw map[string]any, log *slog.Logger, at func(string, error) error) (*linkConf, error) {
	name, err := tableName(raw, fmt.Sprintf("link%d", i+1), at)
	if err != nil {
		return nil, err
	}
	l := &linkConf{raw: raw, name: name}
	_, isListen := raw["listen"]
	_, isConnect := raw["connect"]
	switch {
	case isListen && isConnect:
		return nil, at("connect", fmt.Errorf("link %q has both listen and connect", l.name))
	case isListen:
		l.mode = "listen"
	case isConnect:
		l.mode = "connect"
	default:
		return nil, at("name", fmt.Errorf("link %q needs listen = ADDR or connect = ADDR", l.name))
	}
	if l.mode == "listen" {
		addr, ok := raw[l.mode].(string)
		if !ok {
			return nil, at(l.mode, errors.New("want an address string"))
		}
		l.addrs = []string{addr}
	} else if l.addrs, err = connectAddrs(raw[l.mode]); err != nil {
		return nil, at(l.mode, err)
	}
	l.addr = l.addrs[0]
	l.opts = &options{}
	fs := pflag.NewFlagSet(l.mode, pflag.ContinueOnError)
	l.opts.addLinkFlags(fs)
	if l.mode == "listen" {
		l.opts.addListenFlags(fs)
	} else {
		l.opts.addConnectFlags(fs)
	}
	if err := applyKeys(fs, raw, fmt.Sprintf("a %s link", l.mode), []string{"name", l.mode}, []string{"profile", "metrics"}, at); err != nil {
		return nil, err
	}
	first := l.addrs
	if len(l.opts.via) > 0 {
		first = l.opts.via[:1]
	}
	if err := l.opts.checkTLSFlags(fs, first...); err != nil {
		var fe *flagError
		errors.As(err, &fe)
		return nil, at(fe.flag, fe.err)
	}
	linkLog := log.With("link", l.name)
	_, cfg, copts, err := l.opts.setup(func() (*slog.Logger, error) { return linkLog, nil })
	if err != nil {
		var fe *flagError
		if errors.As(err, &fe) {
			return nil, at(fe.flag, fe.err)
		}
		return nil, at("name", err)
	}
	l.cfg, l.copts = cfg, copts
	if l.mode == "listen" {
		if _, err := carriers.IsLoopback(l.addr); err != nil {
			return nil, at("listen", err)
		}
	} else if _, err := newDialers(l.addrs, copts); err != nil && len(l.opts.via) == 0 {
		return nil, at("connect", err)
	}
	return l, nil
}

// shareIndex is where keyLines keeps the lines of the i-th [[share]].
func shareIndex(i int) int { return -1000 - i }

// resolveShare applies one [[share]] table to sockmux share's flags.
func resolveShare(i int, raw map[string]any, log *slog.Logger, at func(string, error) error) (*shareConf, error) {
	name, err := tableName(raw, fmt.Sprintf("share%d", i+1), at)
	if err != nil {
		return nil, err
	}
	sc := &shareConf{raw: raw, name: name}
	var sf shareFlags
	fs := pflag.NewFlagSet("share", pflag.ContinueOnError)
	sf.addFlags(fs)
	if err := applyKeys(fs, raw, "a share", []string{"name"}, nil, at); err != nil {
		return nil, err
	}
	cfg, err := sf.config(log.With("share", name))
	if err != nil {
		return nil, at(shareErrKey(raw, err), err)
	}
	sc.cfg = cfg
	return sc, nil
}

// shareFlagRE finds the flag a share's error starts with.
var shareFlagRE = regexp.MustCompile(`^(?:usage: )?--([a-z-]+)`)

// shareErrKey is the key a [[share]]'s error is about: the flag it names
// first when the table sets it ("--slow-timeout applies only to --slow
// wait" is at slow-timeout), the table's name otherwise.
func shareErrKey(raw map[string]any, err error) string {
	if m := shareFlagRE.FindStringSubmatch(err.Error()); m != nil {
		if _, ok := raw[m[1]]; ok {
			return m[1]
		}
	}
	return "name"
}

// tableName is a table's name key, or def.
func tableName(raw map[string]any, def string, at func(string, error) error) (string, error) {
	v, ok := raw["name"]
	if !ok {
		return def, nil
	}
	name, ok := v.(string)
	if !ok || name == "" {
		return "", at("name", errors.New("want a non-empty string"))
	}
	return name, nil
}

// applyKeys sets each key of raw, in a stable order, on the flag of the
// same name in fs. own are the table's keys that are not flags (handled by
// the caller); refused are flags that have no place in a file (the
// process-wide ones). what names the table in errors.
func applyKeys(fs *pflag.FlagSet, raw map[string]any, what string, own, refused []string, at func(string, error) error) error {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(own, k) {
			continue
		}
		if why := notInFile[k]; why != "" {
			return at(k, fmt.Errorf("%w for %s: --%s %s", errUnknownKey, what, k, why))
		}
		if fs.Lookup(k) == nil || slices.Contains(refused, k) {
			var known []string
			for _, n := range append(flagNames(fs), own...) {
				if !slices.Contains(refused, n) {
					known = append(known, n)
				}
			}
			return at(k, fmt.Errorf("%w for %s%s", errUnknownKey, what, didYouMean(k, known, strconv.Quote)))
		}
		if _, list := raw[k].([]any); list && !repeatable(fs.Lookup(k)) {
			return at(k, fmt.Errorf("takes one value, not a list"))
		}
		vals, err := flagValues(raw[k])
		if err != nil {
			return at(k, err)
		}
		for _, v := range vals {
			if err := fs.Set(k, v); err != nil {
				return at(k, err)
			}
		}
	}
	return nil
}

// flagValues turns a TOML value into the strings a flag is set with.
func flagValues(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case bool:
		return []string{strconv.FormatBool(x)}, nil
	case int64:
		return []string{strconv.FormatInt(x, 10)}, nil
	case float64:
		return []string{strconv.FormatFloat(x, 'f', -1, 64)}, nil
	case []any:
		var out []string
		for _, e := range x {
			s, err := flagValues(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is not a value this key takes (a string, number, boolean, or a list of them)", tomlKind(v))
}

// tomlKind names a TOML value's kind as the file's author wrote it.
func tomlKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return fmt.Sprintf("a %T", v)
}

// repeatable says whether a flag takes several values (-L, -R, ...): a
// list in the file is those values. Any other takes one.
func repeatable(f *pflag.Flag) bool {
	switch f.Value.Type() {
	case "stringSlice", "stringArray", "intSlice", "durationSlice":
		return true
	}
	return false
}

// checkConflicts finds two forwards (or a forward and a link listener)
// that would listen on the same address.
func (c *config) checkConflicts(at func(int, string, error) error) error {
	seen := map[string]string{}
	claim := func(i int, key, addr string) error {
		if prev, ok := seen[addr]; ok {
			return at(i, key, fmt.Errorf("%w: %s is already used by %s", errConflict, addr, prev))
		}
		seen[addr] = fmt.Sprintf("%s (link %q)", key, c.links[i].name)
		return nil
	}
	for i, l := range c.links {
		if l.mode == "listen" {
			if hp := carriers.TCPAddress(l.addr); hp != "" {
				if err := claim(i, "listen", "tcp/"+hp); err != nil {
					return err
				}
			}
			if hp := carriers.UDPAddress(l.addr); hp != "" {
				if err := claim(i, "listen", "udp/"+hp); err != nil {
					return err
				}
			}
		}
		for _, f := range l.cfg.Forwards {
			proto := "tcp/"
			if f.UDP {
				proto = "udp/"
			}
			if err := claim(i, "local", proto+f.Bind); err != nil {
				return err
			}
		}
		for _, d := range l.cfg.Dynamic {
			if err := claim(i, "dynamic", "tcp/"+d); err != nil {
				return err
			}
		}
	}
	for k, sc := range c.shares {
		addr := "tcp/" + sc.cfg.Listen
		if _, port, err := net.SplitHostPort(sc.cfg.Listen); err == nil && port == "0" {
			continue
		}
		if prev, ok := seen[addr]; ok {
			return at(shareIndex(k), "listen", fmt.Errorf("%w: %s is already used by %s", errConflict, sc.cfg.Listen, prev))
		}
		seen[addr] = fmt.Sprintf("listen (share %q)", sc.name)
	}
	return nil
}

// keyLines maps, for each [[link]] (index; -1 before the first), each key
// to the line it is set on.
func keyLines(data []byte) map[int]map[string]int {
	out := map[int]map[string]int{-1: {}}
	link, links, shares := -1, -1, 0
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "[[link]]"):
			links++
			link = links
			out[link] = map[string]int{"name": n}
		case strings.HasPrefix(line, "[[share]]"):
			link = shareIndex(shares)
			shares++
			out[link] = map[string]int{"name": n}
		case strings.HasPrefix(line, "[cluster]"):
			link = clusterKeyLines
			out[link] = map[string]int{"name": n}
		case strings.HasPrefix(line, "[link.") && link >= 0, strings.HasPrefix(line, "[share.") && link <= shareIndex(0):
			// A table inside the current one ([link.local]): its key is
			// on the header's line.
			k := strings.TrimSuffix(strings.SplitN(line, ".", 2)[1], "]")
			if _, dup := out[link][k]; !dup {
				out[link][k] = n
			}
		case strings.HasPrefix(line, "#") || line == "":
		default:
			if k, _, ok := strings.Cut(line, "="); ok {
				k = strings.Trim(strings.TrimSpace(k), `"`)
				if _, dup := out[link][k]; !dup || k == "name" {
					out[link][k] = n
				}
			}
		}
	}
	return out
}

// pathKeys are the keys whose value is a file or a folder.
var pathKeys = []string{"key-file", "identity", "authorized-keys", "known-hosts", "tls-cert", "tls-key", "tls-ca", "tls-client-ca", "state-dir"}

// resolvePaths makes the relative paths of a table relative to dir, the
// config file's folder, as nginx and sshd read theirs: a file keeps
// working from whatever folder the daemon is started in.
func resolvePaths(raw map[string]any, dir string) {
	for _, k := range pathKeys {
		if v, ok := raw[k].(string); ok && v != "" && !filepath.IsAbs(v) {
			raw[k] = filepath.Join(dir, v)
		}
	}
}
