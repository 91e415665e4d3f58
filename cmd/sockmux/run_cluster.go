package main

// A `sockmux run` hub's part in its cluster: which listen link's node
// the bridge and the door (the other hubs' links) are at, then and after
// each reload.

import (
	"bytes"
	"fmt"

	"github.com/sockmux/sockmux/internal/cluster"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/peernode"
)

// bridge puts the bridge and the door at the first listen link of order
// (the file's links, in its order) that runs, unless the link they are
// at still runs; it says what it did, for the reload's account ("" if
// nothing). The bridge takes that link's settings (key, remote-bind-addr,
// allow-listen), and takes them again when a reload has changed them. A
// bridge that moves is a new one, and the old one is closed (it stops
// watching the directory). With no listen link running, nothing bridges
// the other hubs' binds here and the door refuses their links, until a
// reload adds one. d.mu is held, or the daemon does not serve its control
// socket yet.
func (d *daemon) bridge(order []*linkConf) (string, error) {
	if d.member == nil {
		return "", nil
	}
	if rl, ok := d.links[d.bridged]; ok && d.bridger != nil {
		cfg := bridgeConfig(rl.conf.cfg, d.door, d.log)
		if sameBridgeConfig(cfg, d.bridgeCfg) {
			return "", nil
		}
		d.bridger.SetConfig(cfg)
		d.bridgeCfg = cfg
		return fmt.Sprintf("cluster: the bridge takes link %q's new settings", d.bridged), nil
	}
	was := d.bridged
	d.unbridge()
	for _, l := range order {
		rl, ok := d.links[l.name]
		if l.mode != "listen" || !ok {
			continue
		}
		// A new bridge, not the old one attached elsewhere: the old one's
		// pools went with its node, and its settings were its link's.
		d.bridgeCfg = bridgeConfig(rl.conf.cfg, d.door, d.log)
		d.bridger, d.bridged = cluster.NewBridge(d.member, d.bridgeCfg), l.name
		d.bridger.Attach(peernode.Of(rl.node)) // its pools get the other hubs' shares
		if err := d.door.serve(rl.node); err != nil {
			return "", fmt.Errorf("cluster: the other hubs' links are not served at link %q: %w", l.name, err)
		}
		if was == "" {
			return "", nil
		}
		d.log.Info("cluster: the bridge and the other hubs' links moved", "from", was, "to", l.name)
		return fmt.Sprintf("cluster: bridging at link %q", l.name), nil
	}
	if was != "" {
		d.log.Warn("cluster: no listen link runs: the other hubs' binds are not bridged here, and their links are refused", "was", was)
	}
	return "", nil
}

// sameBridgeConfig reports whether a and b bridge alike: the same key,
// remote-bind-addr and allow-listen (their loggers aside).
func sameBridgeConfig(a, b cluster.BridgeConfig) bool {
	text := func(p *forward.TargetPolicy) string {
		if p == nil {
			return "<default>"
		}
		return p.String()
	}
	return bytes.Equal(a.Key, b.Key) && a.RemoteBindAddr == b.RemoteBindAddr && text(a.AllowListen) == text(b.AllowListen)
}

// unbridge closes the bridge, if one runs; the door stays open. d.mu is
// held, or the daemon is stopping.
func (d *daemon) unbridge() {
	if d.bridger != nil {
		d.bridger.Close()
	}
	d.bridger, d.bridged, d.bridgeCfg = nil, "", cluster.BridgeConfig{}
}
