package main

// Reloading a running daemon's config file: what applies live, what needs
// a restart, and the account of both that `sockmux reload` prints.

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/internal/forward"
)

// liveKeys are the [[link]] keys a reload applies to a running link:
// forwards (-L, -D, -R) at once, the policies, -D's credentials and the
// key for what starts after the reload. Any other key needs a restart.
var liveKeys = []string{"local", "dynamic", "remote", "gateway-ports", "allow-target", "allow-listen", "direct", "socks-user", "key-file", "authorized-keys"}

// reloadResult is what a reload did, for the log and `sockmux reload`.
type reloadResult struct {
	Applied     []string `json:"applied,omitempty"`      // one line per change made
	NeedRestart []string `json:"need_restart,omitempty"` // one line per link or key left as it was
	Failed      []string `json:"failed,omitempty"`       // changes tried that did not take
}

// complete tells whether everything the file asks for is running now.
func (r *reloadResult) complete() bool { return len(r.NeedRestart) == 0 && len(r.Failed) == 0 }

func (r *reloadResult) applied(format string, args ...any) {
	r.Applied = append(r.Applied, fmt.Sprintf(format, args...))
}

func (r *reloadResult) failed(format string, args ...any) {
	r.Failed = append(r.Failed, fmt.Sprintf(format, args...))
}

// changedKeys are the keys whose values differ between two tables.
func changedKeys(a, b map[string]any) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// reload re-reads the file and applies it: links and shares added or
// removed start or stop (a changed share restarts); for a running link,
// the liveKeys apply at once and every other changed key is named as
// needing a restart and left as it runs. A file that fails validation
// changes nothing and is the error.
func (d *daemon) reload() (*reloadResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	next, err := loadConfig(d.cfg.path, d.log)
	if err != nil {
		return nil, err
	}
	res := &reloadResult{}
	for _, k := range []struct {
		key       string
		was, will string
	}{{"log-level", d.cfg.logLevel, next.logLevel}, {"log-format", d.cfg.logFormat, next.logFormat},
		{"metrics", d.cfg.metrics, next.metrics}, {"control", d.cfg.control, next.control}} {
		if k.was != k.will {
			res.NeedRestart = append(res.NeedRestart, fmt.Sprintf("%s: changed from %q to %q: needs a restart", k.key, k.was, k.will))
			setProcessKey(next, k.key, k.was) // what runs stays what the file said before
		}
	}
	if changed := clusterChanged(d.cfg.cluster, next.cluster); changed != "" {
		res.NeedRestart = append(res.NeedRestart, "cluster: "+changed+": needs a restart")
		next.cluster = d.cfg.cluster // what runs stays what the file said before
	}
	for name, rl := range d.links {
		if !slices.ContainsFunc(next.links, func(l *linkConf) bool { return l.name == name }) {
			rl.stop(rl.conf.opts.drain)
			delete(d.links, name)
			res.applied("link %q removed", name)
		}
	}
	for _, l := range next.links {
		rl, ok := d.links[l.name]
		if !ok {
			if rl, err = d.start(l); err != nil {
				res.failed("link %q not started: %v", l.name, err)
				continue
			}
			d.links[l.name] = rl
			res.applied("link %q added", l.name)
			continue
		}
		d.applyLink(rl, l, res)
	}
	// The links a reload removed may have held the bridge and the door,
	// or the one holding them may have new settings.
	if did, err := d.bridge(next.links); err != nil {
		res.failed("%v", err)
	} else if did != "" {
		res.applied("%s", did)
	}
	for name, rs := range d.shares {
		i := slices.IndexFunc(next.shares, func(s *shareConf) bool { return s.name == name })
		if i < 0 || !reflect.DeepEqual(next.shares[i].raw, rs.conf.raw) {
			rs.share.Close()
			delete(d.shares, name)
			if i < 0 {
				res.applied("share %q removed", name)
			}
		}
	}
	for _, sc := range next.shares {
		if _, ok := d.shares[sc.name]; ok {
			continue
		}
		rs, err := d.startShare(sc)
		if err != nil {
			res.failed("share %q not started: %v", sc.name, err)
			continue
		}
		d.shares[sc.name] = rs
		res.applied("share %q started", sc.name)
	}
	next.links = nil
	for _, rl := range d.links {
		next.links = append(next.links, rl.conf)
	}
	d.cfg = next
	for _, a := range res.Applied {
		d.log.Info("reload: " + a)
	}
	for _, n := range res.NeedRestart {
		d.log.Warn("reload: not applied: " + n)
	}
	for _, f := range res.Failed {
		d.log.Error("reload: failed: " + f)
	}
	d.log.Info("reloaded", "config", next.path, "links", len(d.links), "shares", len(d.shares),
		"applied", len(res.Applied), "need_restart", len(res.NeedRestart), "failed", len(res.Failed))
	return res, nil
}

// setProcessKey puts a process-wide key back to the value that runs.
func setProcessKey(c *config, key, v string) {
	switch key {
	case "log-level":
		c.logLevel = v
	case "log-format":
		c.logFormat = v
	case "metrics":
		c.metrics = v
	case "control":
		c.control = v
	}
}

// applyLink applies next's liveKeys to a running link and names the other
// keys that changed. What runs afterwards, rl.conf, is next for the keys
// applied and the running configuration for the others, so a later reload
// still sees the keys that wait for a restart as changed.
func (d *daemon) applyLink(rl *runningLink, next *linkConf, res *reloadResult) {
	old := rl.conf
	var restart []string
	for _, k := range changedKeys(old.raw, next.raw) {
		if !slices.Contains(liveKeys, k) {
			restart = append(restart, k)
		}
	}
	if (old.mode != next.mode || !slices.Equal(old.addrs, next.addrs)) && !slices.Contains(restart, next.mode) {
		restart = append(restart, next.mode)
	}
	running := *old
	running.raw = make(map[string]any, len(old.raw))
	for k, v := range old.raw {
		if !slices.Contains(liveKeys, k) {
			running.raw[k] = v
		}
	}
	for k, v := range next.raw {
		if slices.Contains(liveKeys, k) {
			running.raw[k] = v
		}
	}
	if len(restart) > 0 {
		res.NeedRestart = append(res.NeedRestart, fmt.Sprintf("link %q: %s changed: needs a restart", next.name, strings.Join(restart, ", ")))
	}
	failed := d.applyForwards(rl, next, res)
	if got, want := old.cfg.Remotes, next.cfg.Remotes; !slices.Equal(got, want) {
		added, removed, retargeted := rl.node.SetRemotes(want)
		res.applied("link %q: -R: %d added, %d removed, %d retargeted", next.name, added, removed, retargeted)
	}
	oldP := policiesOf(old.cfg)
	newP := policiesOf(next.cfg)
	if !samePolicies(oldP, newP) {
		rl.node.SetPolicies(newP)
		res.applied("link %q: policies and key for new streams and handshakes", next.name)
	}
	// A forward that failed to listen is not running: the next reload
	// tries it again.
	running.cfg.Forwards = slices.DeleteFunc(slices.Clone(next.cfg.Forwards), func(f forward.Forward) bool { return failed[sockmux.ForwardKey(f)] })
	running.cfg.Dynamic = slices.DeleteFunc(slices.Clone(next.cfg.Dynamic), func(b string) bool { return failed[sockmux.ProxyKey(b)] })
	running.cfg.Remotes = next.cfg.Remotes
	running.cfg.AllowTargets, running.cfg.AllowListen, running.cfg.Direct = next.cfg.AllowTargets, next.cfg.AllowListen, next.cfg.Direct
	running.cfg.ProxyAuth, running.cfg.Key, running.cfg.AuthorizedKeys = next.cfg.ProxyAuth, next.cfg.Key, next.cfg.AuthorizedKeys
	running.lines = next.lines
	rl.conf = &running
}

// policiesOf is the part of a link's configuration SetPolicies changes.
func policiesOf(c sockmux.PeerConfig) sockmux.Policies {
	return sockmux.Policies{AllowTargets: c.AllowTargets, AllowListen: c.AllowListen, Direct: c.Direct, ProxyAuth: c.ProxyAuth, Key: c.Key,
		AuthorizedKeys: c.AuthorizedKeys}
}

func samePolicies(a, b sockmux.Policies) bool {
	text := func(p *forward.TargetPolicy) string {
		if p == nil {
			return "<default>"
		}
		return p.String()
	}
	return text(a.AllowTargets) == text(b.AllowTargets) && text(a.AllowListen) == text(b.AllowListen) &&
		text(a.Direct) == text(b.Direct) && reflect.DeepEqual(a.ProxyAuth, b.ProxyAuth) && bytes.Equal(a.Key, b.Key) &&
		a.AuthorizedKeys.Equal(b.AuthorizedKeys)
}

// forwardKeyed is a forward or a -D, as a reload compares them.
type forwardKeyed struct {
	Forward forward.Forward
	Proxy   string
}

// applyForwards adds and removes -L and -D listeners to match next; the
// others' streams are not touched. It returns the keys of the forwards
// that could not be added.
func (d *daemon) applyForwards(rl *runningLink, next *linkConf, res *reloadResult) map[string]bool {
	failed := map[string]bool{}
	had, want := map[string]forwardKeyed{}, map[string]forwardKeyed{}
	for _, f := range rl.conf.cfg.Forwards {
		had[sockmux.ForwardKey(f)] = forwardKeyed{Forward: f}
	}
	for _, b := range rl.conf.cfg.Dynamic {
		had[sockmux.ProxyKey(b)] = forwardKeyed{Proxy: b}
	}
	for _, f := range next.cfg.Forwards {
		want[sockmux.ForwardKey(f)] = forwardKeyed{Forward: f}
	}
	for _, b := range next.cfg.Dynamic {
		want[sockmux.ProxyKey(b)] = forwardKeyed{Proxy: b}
	}
	for k, f := range had {
		if w, ok := want[k]; !ok || w != f {
			rl.node.RemoveForward(k)
			res.applied("link %q: forward %s removed", next.name, k)
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
			failed[k] = true
			res.failed("link %q: forward %s not added: %v", next.name, k, err)
		} else {
			res.applied("link %q: forward %s added", next.name, k)
		}
	}
	return failed
}

// errIncomplete is a reload that left something of the file unapplied.
var errIncomplete = errors.New("incomplete")
