package bench

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/sockmux/sockmux/internal/procgroup"
)

// The cluster workload: two `sockmux listen --cluster` hubs and one edge
// whose `-R '*:P:target'` is made to the first, all processes of the
// binary built from this tree. ClusterHubs(false) is the edge's own hub
// (its -R port on 127.0.0.11, where the edge's link ends); ClusterHubs(true)
// is the other hub (its bridge on 127.0.0.12, one hop more: hub to hub
// over a sockmux link, then the edge's link).

// ClusterHubs is the cluster as a System: hop picks the hub one hop away.
func ClusterHubs(hop bool) System {
	name := "cluster-own-hub"
	if hop {
		name = "cluster-one-hop"
	}
	return System{Name: name, New: func(target string, _ Options) (Tunnel, error) {
		c, err := startCluster(target)
		if err != nil {
			return nil, err
		}
		if hop {
			c.addr = c.far
		} else {
			c.addr = c.near
		}
		return c, nil
	}}
}

// clusterTunnel is the two hubs and the edge.
type clusterTunnel struct {
	procs     []*exec.Cmd
	near, far string // the -R port on the edge's hub, and on the other
	addr      string
	closeOnce sync.Once
	dir       string
}

func startCluster(target string) (*clusterTunnel, error) {
	bin, err := sockmuxBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sockmux-bench-cluster-")
	if err != nil {
		return nil, err
	}
	t := &clusterTunnel{dir: dir}
	if err := startTries(func() error { return t.start(bin, target) }, t.stop); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

func (t *clusterTunnel) start(bin, target string) error {
	var ports [5]string
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	linkA, linkB := "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1]
	ctlA, ctlB := "127.0.0.1:"+ports[2], "127.0.0.1:"+ports[3]
	t.near, t.far = "127.0.0.11:"+ports[4], "127.0.0.12:"+ports[4]
	hub := func(link, ctl, bindHost string, seed ...string) *exec.Cmd {
		args := []string{"listen", "--remote-bind-addr", bindHost, "--cluster", "bench", "--cluster-bind", ctl}
		for _, s := range seed {
			args = append(args, "--cluster-seed", s)
		}
		return exec.Command(bin, append(args, link)...)
	}
	a := hub(linkA, ctlA, "127.0.0.11")
	procgroup.Set(a)
	t.procs = append(t.procs, a)
	if err := waitLine(a, true, `msg="listening for links"`, 10*time.Second); err != nil {
		return fmt.Errorf("hub A: %w", err)
	}
	b := hub(linkB, ctlB, "127.0.0.12", ctlA)
	procgroup.Set(b)
	t.procs = append(t.procs, b)
	if err := waitLine(b, true, `msg="listening for links"`, 10*time.Second); err != nil {
		return fmt.Errorf("hub B: %w", err)
	}
	edge := exec.Command(bin, "connect", "-R", "*:"+ports[4]+":"+target, linkA)
	procgroup.Set(edge)
	t.procs = append(t.procs, edge)
	if err := waitLine(edge, true, `msg="reverse forward listening"`, 10*time.Second); err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	// The other hub binds the port once the directory has told it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", t.far)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hub B never bound the edge's -R on %s: %w", t.far, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (t *clusterTunnel) Addr() string { return t.addr }

// Processes are the hubs and the edge.
func (t *clusterTunnel) Processes() []int { return pidsOf(t.procs...) }

// Close ends every process and removes the folder.
func (t *clusterTunnel) Close() {
	t.closeOnce.Do(func() {
		t.stop()
		os.RemoveAll(t.dir)
	})
}

func (t *clusterTunnel) stop() {
	for i := len(t.procs) - 1; i >= 0; i-- {
		c := t.procs[i]
		if c.Process == nil {
			continue
		}
		if c.Process.Signal(syscall.SIGTERM) != nil {
			_ = c.Process.Kill()
		}
		_ = c.Wait()
	}
	t.procs = nil
}
