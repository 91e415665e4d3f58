package actors

// A Node's forwards: adding, naming and removing the -L, -D and UDP listeners.

import (
	"fmt"
	"net"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/internal/forward"
)

// AddForward listens for f and carries its connections over the newest
// live link.
func (n *Node) AddForward(f forward.Forward) error {
	if f.UDP {
		return n.addUDPForward(f)
	}
	ln, err := listenTCP(f.Bind)
	if err != nil {
		return fmt.Errorf("forward %v: %w", f, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		ln.Close()
		return ErrClosed
	}
	n.env.log.Info("forward listening", "listen", ln.Addr().String(), "target", f.Target)
	pid := n.env.sys.Root.Spawn(n.env.props(func() actor.Actor { return newListener(n.env, ln, f) }))
	n.addForwardPID(pid, f.Bind, ln.Addr())
	n.listeners = append(n.listeners, ln)
	return nil
}

// addProxy listens for -D on bind.
func (n *Node) addProxy(bind string) error {
	ln, err := listenTCP(bind)
	if err != nil {
		return fmt.Errorf("-D %s: %w", bind, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		ln.Close()
		return ErrClosed
	}
	n.env.log.Info("proxy listening", "listen", ln.Addr().String(), "protocols", "socks5,http-connect")
	pid := n.env.sys.Root.Spawn(n.env.props(func() actor.Actor {
		l := newListener(n.env, ln, forward.Forward{Bind: ln.Addr().String(), Target: "(proxy)"})
		l.proxy, l.proxyBind = true, bind
		return l
	}))
	n.addForwardPID(pid, "D:"+bind, ln.Addr())
	n.listeners = append(n.listeners, ln)
	return nil
}

func (n *Node) addUDPForward(f forward.Forward) error {
	addr, err := net.ResolveUDPAddr("udp", f.Bind)
	if err != nil {
		return fmt.Errorf("forward %v: %w", f, err)
	}
	pc, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("forward %v: %w", f, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		pc.Close()
		return ErrClosed
	}
	n.env.log.Info("forward listening", "listen", pc.LocalAddr().String()+"/udp", "target", f.Target)
	pid := n.env.sys.Root.Spawn(n.env.props(func() actor.Actor { return newUDPListener(n.env, pc, f) }))
	n.addForwardPID(pid, f.Bind+"/udp", pc.LocalAddr())
	return nil
}

// addForwardPID records a forward's Listener; n.mu is held.
func (n *Node) addForwardPID(pid *actor.PID, bind string, addr net.Addr) {
	n.forwards = append(n.forwards, pid)
	n.fwdBinds = append(n.fwdBinds, bind)
	n.fwdAddrs = append(n.fwdAddrs, addr)
}

// ForwardKey names a forward for RemoveForward: its bind address, with
// "/udp" for a UDP forward.
func ForwardKey(f forward.Forward) string {
	if f.UDP {
		return f.Bind + "/udp"
	}
	return f.Bind
}

// ForwardKeyed is a forward or a -D, as configuration reload compares them.
type ForwardKeyed struct {
	Forward forward.Forward
	Proxy   string
}

// ProxyKey names a -D for RemoveForward.
func ProxyKey(bind string) string { return "D:" + bind }

// AddProxy starts a -D proxy listening on bind.
func (n *Node) AddProxy(bind string) error { return n.addProxy(bind) }

// RemoveForward stops the forward (or -D) key names from accepting;
// streams it already carries go on untouched.
func (n *Node) RemoveForward(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, b := range n.fwdBinds {
		if b == key {
			n.env.sys.Root.Stop(n.forwards[i])
			n.env.log.Info("forward removed", "listen", n.fwdAddrs[i].String())
			n.forwards = append(n.forwards[:i], n.forwards[i+1:]...)
			n.fwdBinds = append(n.fwdBinds[:i], n.fwdBinds[i+1:]...)
			n.fwdAddrs = append(n.fwdAddrs[:i], n.fwdAddrs[i+1:]...)
			return true
		}
	}
	return false
}

// ForwardAddrs are the addresses the forwards listen on, in order.
func (n *Node) ForwardAddrs() []net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]net.Addr(nil), n.fwdAddrs...)
}
