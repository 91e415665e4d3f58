package main

// A `sockmux run` hub's part in its cluster: which listen link's node
// the bridge and the door (the other hubs' links) are at, then and after
// each reload.

import (
	"fmt"

	"github.com/sockmux/sockmux/internal/cluster"
)

// bridge puts the bridge and the door at the first listen link of order
// (the file's links, in its order) that runs, unless the link they are
// at still runs; it says where they moved, "" if they did not. The bridge
// takes that link's settings (key, remote-bind-addr, allow-listen). With
// no listen link running, nothing bridges the other hubs' binds here and
// the door refuses their links, until a reload adds one. d.mu is held,
// or the daemon does not serve its control socket yet.
func (d *daemon) bridge(order []*linkConf) (string, error) {
	if d.member == nil {
		return "", nil
	}
	if _, ok := d.links[d.bridged]; ok && d.bridger != nil {
		return "", nil
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
		d.bridger, d.bridged = cluster.NewBridge(d.member, bridgeConfig(rl.conf.cfg, d.door, d.log)), l.name
		d.bridger.Attach(rl.node) // its pools get the other hubs' shares
		if err := d.door.serve(rl.node); err != nil {
			return "", fmt.Errorf("cluster: the other hubs' links are not served at link %q: %w", l.name, err)
		}
		if was != "" {
			d.log.Info("cluster: the bridge and the other hubs' links moved", "from", was, "to", l.name)
		}
		return l.name, nil
	}
	if was != "" {
		d.log.Warn("cluster: no listen link runs: the other hubs' binds are not bridged here, and their links are refused", "was", was)
	}
	return "", nil
}

// unbridge closes the bridge, if one runs; the door stays open. d.mu is
// held, or the daemon is stopping.
func (d *daemon) unbridge() {
	if d.bridger != nil {
		d.bridger.Close()
	}
	d.bridger, d.bridged = nil, ""
}
