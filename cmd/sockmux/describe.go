package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sockmux/sockmux/carriers"
)

// describe prints the resolved configuration (sockmux check): every link
// and share as it will run, and for a TLS link the certificate fingerprint
// the other side pins.
func (c *config) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d link(s), %d share(s); log-level %s; control socket %s", c.path, len(c.links), len(c.shares), c.logLevel, c.control)
	if c.metrics != "" {
		fmt.Fprintf(&b, "; metrics on %s", c.metrics)
	}
	b.WriteString("\n")
	for _, l := range c.links {
		describeLink(&b, l)
	}
	for _, s := range c.shares {
		cfg := s.cfg
		fmt.Fprintf(&b, "share %q: listen %s, upstream %s\n", s.name, cfg.Listen, cfg.Upstream)
		fmt.Fprintf(&b, "  client-buffer %d; slow clients: %v; replay %d\n", cfg.ClientBuffer, cfg.Slow, cfg.Replay)
	}
	return b.String()
}

func describeLink(b *strings.Builder, l *linkConf) {
	fmt.Fprintf(b, "link %q: %s %s\n", l.name, l.mode, strings.Join(l.addrs, " "))
	if len(l.addrs) > 1 {
		fmt.Fprintf(b, "  failover in turn: %s (after the last, the first again)\n", strings.Join(l.addrs, ", "))
	}
	cfg := l.cfg
	auth := "none"
	var parts []string
	if cfg.Key != nil {
		parts = append(parts, "pre-shared key from "+l.opts.keyFile)
	}
	if cfg.Identity != nil {
		parts = append(parts, "identity "+cfg.Identity.Public.String()+" from "+l.opts.identity)
	}
	switch {
	case cfg.AuthorizedKeys != nil:
		parts = append(parts, fmt.Sprintf("%d authorized keys from %s", cfg.AuthorizedKeys.Len(), l.opts.authKeys))
	case cfg.PeerKey != nil:
		parts = append(parts, "listener pinned to "+cfg.PeerKey.String())
	case cfg.KnownHosts != "":
		parts = append(parts, "listener pinned by "+cfg.KnownHosts)
	}
	if len(parts) > 0 {
		auth = strings.Join(parts, ", ")
	}
	keepalive := "off"
	if cfg.Keepalive > 0 {
		keepalive = cfg.Keepalive.String()
	}
	fmt.Fprintf(b, "  authentication: %s; max-streams %d; keepalive %s; open-timeout %v; drain %v\n",
		auth, cfg.MaxStreams, keepalive, cfg.OpenTimeout, l.opts.drain)
	resume := "off"
	if cfg.ResumeWindow > 0 {
		resume = cfg.ResumeWindow.String()
	}
	if l.mode == "connect" {
		fmt.Fprintf(b, "  carriers %d; resume-window %s\n", cfg.Carriers, resume)
	} else {
		fmt.Fprintf(b, "  resume-window %s\n", resume)
	}
	if slices.ContainsFunc(l.addrs, carriers.UsesTLS) {
		fmt.Fprintf(b, "  tls: %s\n", tlsSummary(l))
	}
	policy := "default (any for an authenticated peer, loopback otherwise)"
	if cfg.AllowTargets != nil {
		policy = cfg.AllowTargets.String()
	}
	fmt.Fprintf(b, "  allow-target: %s\n", policy)
	for _, f := range cfg.Forwards {
		fmt.Fprintf(b, "  -L %s\n", f)
	}
	for _, f := range cfg.Remotes {
		fmt.Fprintf(b, "  -R %s\n", f)
	}
	for _, d := range cfg.Dynamic {
		fmt.Fprintf(b, "  -D %s\n", d)
	}
	for _, v := range l.opts.via {
		fmt.Fprintf(b, "  via %s\n", v)
	}
}

// tlsSummary says how a TLS link proves itself: for a listener, the
// fingerprint its peers pin (a certificate not generated yet is generated
// by the first listen, not by check, which changes nothing); for a
// dialler, what it checks.
func tlsSummary(l *linkConf) string {
	t := l.opts.tls
	if l.mode == "connect" {
		switch {
		case t.Fingerprint != "":
			return "pins the server certificate fingerprint " + t.Fingerprint
		case t.CAFile != "":
			return "verifies the server against the CA in " + t.CAFile
		default: // wss:// only: tls:// and quic:// need one of the two
			return "verifies the server against the system's roots"
		}
	}
	if t.CertFile == "" {
		dir := t.StateDir
		if dir == "" {
			dir, _ = carriers.DefaultStateDir()
		}
		if _, err := os.Stat(filepath.Join(dir, carriers.GeneratedCertFile)); errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("no certificate yet: listen generates one in %s at its first start and logs its fingerprint", dir)
		}
	}
	fp, err := t.ServerFingerprint()
	if err != nil {
		return "certificate: " + err.Error()
	}
	return "certificate fingerprint " + fp + " (peers pin it with tls-fingerprint)"
}
