package main

// The hub door: where a hub of a cluster with a key takes the other hubs'
// links. It outlives the node that serves it: under `sockmux run` a
// reload may remove the listen link whose node serves the door, and the
// door moves to another listen link's node (daemon.bridge) instead of
// closing with it. The door's address is this hub's Link in the cluster,
// which its directory entries name and by which the other hubs judge its
// health (internal/cluster/health.go), so it must stay the same and stay
// open while the hub runs. Should its listener end all the same, the
// member hears of it (onLost: cluster.Member.LinksClosed) and withdraws
// from the cluster, rather than have the other hubs count it until the
// links they hold to it drop.

import (
	"fmt"
	"net"
	"sync"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/acceptloop"
	"github.com/sockmux/sockmux/internal/cluster"
)

// hubDoor is the listener on which a hub of a cluster with a key takes
// the other hubs' links, and their key (cluster.HubLinkKey): the hubs
// reach each other with the cluster's key, whatever the edges use
// (--key-file, or identities, which one hub could not show another).
type hubDoor struct {
	ln  net.Listener
	key []byte

	mu      sync.Mutex
	cur     *doorway // the serving node's listener; nil: none serves
	started bool     // the accept loop runs
	closed  bool
	lost    func()        // told when the listener ends before close (onLost)
	done    chan struct{} // closed when the accept loop has ended
}

// openHubDoor listens for the other hubs' links when the cluster has a
// key (nil, nil when not: the hubs then dial the edges' listener with
// --key-file, as an edge would), at --cluster-hub-listen or on
// --cluster-bind's host, and makes ccfg.Link the address the other hubs
// dial, unless --cluster-link gave one.
func openHubDoor(c *clusterFlags, ccfg *cluster.Config) (*hubDoor, error) {
	if c.name == "" || ccfg.Key == nil {
		return nil, nil
	}
	key, err := cluster.HubLinkKey(ccfg.Key, ccfg.Name)
	if err != nil {
		return nil, flagErr("cluster-key", fmt.Errorf("%w: --cluster-key: %w", errUsage, err))
	}
	at := c.hubListen
	if at == "" {
		host, _, err := net.SplitHostPort(c.bind)
		if err != nil {
			return nil, flagErr("cluster-bind", fmt.Errorf("%w: --cluster-bind %s: %w", errUsage, c.bind, err))
		}
		at = net.JoinHostPort(host, "0")
	}
	ln, err := carriers.Listen(at)
	if err != nil {
		return nil, flagErr("cluster-hub-listen", fmt.Errorf("%w: --cluster-hub-listen %s: %w", errUsage, at, err))
	}
	if c.link == "" {
		via := c.advertise
		if via == "" {
			via = c.bind
		}
		link, err := linkAddr(ln.Addr().String(), via)
		if err != nil {
			ln.Close()
			return nil, flagErr("cluster-link", fmt.Errorf("%w: --cluster-link: %w", errUsage, err))
		}
		ccfg.Link = link
	}
	return &hubDoor{ln: ln, key: key, done: make(chan struct{})}, nil
}

// serve has n take the other hubs' links at the door, in place of the
// node that took them before (if it is still running, it takes no more);
// a nil door does nothing. The node gets a listener of its own, which it
// closes when it stops; the door's stays open.
func (d *hubDoor) serve(n *sockmux.Peer) error {
	if d == nil {
		return nil
	}
	w := &doorway{addr: d.ln.Addr(), conns: make(chan net.Conn), stop: make(chan struct{})}
	if err := n.ServeKeyed(w, d.key); err != nil {
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		w.Close()
		return nil
	}
	old := d.cur
	d.cur = w
	start := !d.started
	d.started = true
	d.mu.Unlock()
	if old != nil {
		old.Close()
	}
	if start {
		go d.accept()
	}
	return nil
}

// onLost has the door call lost (the member's LinksClosed) if its
// listener ends before the door is closed: the hub takes no more links
// from the other hubs, which must stop counting it and routing to it
// rather than wait for the links they hold to drop. A nil door does
// nothing.
func (d *hubDoor) onLost(lost func()) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lost = lost
}

// accept hands each connection to the serving node, or closes it when
// none serves (its dialler redials), until the door's listener closes:
// by close, or else lost.
func (d *hubDoor) accept() {
	defer close(d.done)
	acceptloop.Run(d.ln, acceptloop.Options{}, func(c net.Conn) {
		d.mu.Lock()
		w := d.cur
		d.mu.Unlock()
		if w == nil || !w.hand(c) {
			c.Close()
		}
	})
	d.mu.Lock()
	lost := d.lost
	if d.closed {
		lost = nil
	}
	d.mu.Unlock()
	if lost != nil {
		lost()
	}
}

// close closes the door: its listener, and the serving node's listener
// (the node stays); a nil door, or one closed, does nothing.
func (d *hubDoor) close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	w, started := d.cur, d.started
	d.cur = nil
	d.mu.Unlock()
	d.ln.Close()
	if w != nil {
		w.Close()
	}
	if started {
		<-d.done
	}
}

// doorway is one node's listener at the door: the connections the door
// accepts while that node serves it. Its address is the door's, so the
// node gates it as any TCP link listener (pre-authentication limits).
type doorway struct {
	addr  net.Addr
	conns chan net.Conn
	stop  chan struct{}
	once  sync.Once
}

// hand gives c to the node; false if the doorway closed first.
func (w *doorway) hand(c net.Conn) bool {
	select {
	case w.conns <- c:
		return true
	case <-w.stop:
		return false
	}
}

// Accept is the next connection the door hands over.
func (w *doorway) Accept() (net.Conn, error) {
	select {
	case c := <-w.conns:
		return c, nil
	case <-w.stop:
		return nil, net.ErrClosed
	}
}

// Close stops handing connections to this node.
func (w *doorway) Close() error {
	w.once.Do(func() { close(w.stop) })
	return nil
}

// Addr is the door's address.
func (w *doorway) Addr() net.Addr { return w.addr }
