package netem

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// nsHandle holds the namespace open (ns) and the way back to the host's
// (host): a thread enters one and returns to the other.
type nsHandle struct{ ns, host int }

// makeNS makes the namespace and its devices: on a thread of its own, it
// leaves the host's namespace for a new one, makes a tun device per path
// there, sets addresses, rules and routes (setupScript), and comes back.
func makeNS(far net.IP, srcs []net.IP) (nsHandle, []io.ReadWriteCloser, error) {
	ip, err := lookIP()
	if err != nil {
		return nsHandle{}, nil, err
	}
	type made struct {
		h    nsHandle
		devs []io.ReadWriteCloser
		err  error
	}
	c := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		h, devs, err, back := enterNew(ip, far, srcs)
		if back {
			runtime.UnlockOSThread()
		} // else the thread stays locked, and ends with the goroutine
		c <- made{h, devs, err}
	}()
	m := <-c
	return m.h, m.devs, m.err
}

// enterNew runs on a locked thread: it makes the namespace and everything
// in it, and says whether the thread is back in the host's namespace.
func enterNew(ip string, far net.IP, srcs []net.IP) (h nsHandle, devs []io.ReadWriteCloser, err error, back bool) {
	h.host, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return h, nil, fmt.Errorf("%w: the host's namespace: %v", ErrUnavailable, err), true
	}
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		unix.Close(h.host)
		return h, nil, fmt.Errorf("%w: a new network namespace: %v (root needed)", ErrUnavailable, err), true
	}
	fail := func(err error) (nsHandle, []io.ReadWriteCloser, error, bool) {
		for _, d := range devs {
			d.Close()
		}
		back := unix.Setns(h.host, unix.CLONE_NEWNET) == nil
		h.close()
		return nsHandle{}, nil, err, back
	}
	if h.ns, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		h.ns = -1
		return fail(fmt.Errorf("%w: the new namespace: %v", ErrUnavailable, err))
	}
	for i := range srcs {
		d, err := openTun(tunName(i))
		if err != nil {
			return fail(err)
		}
		devs = append(devs, d)
	}
	// The child runs in this thread's namespace: it forks from it.
	cmd := exec.Command("sh", "-e", "-c", setupScript(ip, far, srcs))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("%w: setting the namespace up: %v: %s", ErrUnavailable, err, out))
	}
	if err := unix.Setns(h.host, unix.CLONE_NEWNET); err != nil {
		for _, d := range devs {
			d.Close()
		}
		h.close()
		return nsHandle{}, nil, fmt.Errorf("netem: back to the host's namespace: %w", err), false
	}
	return h, devs, nil, true
}

func tunName(i int) string { return fmt.Sprintf("path%d", i) }

// lookIP finds the ip program (iproute2), which is often outside a
// user's PATH.
func lookIP() (string, error) {
	if p, err := exec.LookPath("ip"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: the ip program (iproute2) is not installed", ErrUnavailable)
}

// openTun makes tun device name in the calling thread's namespace, with
// no packet information header (each read and write is one IP packet),
// non-blocking so the runtime's poller waits for it.
func openTun(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: /dev/net/tun: %v", ErrUnavailable, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: tun device %s: %v", ErrUnavailable, name, err)
	}
	return os.NewFile(uintptr(fd), "tun:"+name), nil
}

// setupScript configures the namespace. Every address is on lo; the local
// table moves behind rules that send what the host sends from or to path
// i's address (iif lo: sent here, not arriving) to table 100+i, whose one
// route is path i's tun device. A packet written back to the device
// arrives from it and, matching none of those rules, is delivered
// locally: accept_local lets it come from an address of this host,
// rp_filter off lets it come from a device other than the one it would be
// sent to.
func setupScript(ip string, far net.IP, srcs []net.IP) string {
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	line("%s link set lo up", ip)
	line("%s addr add %s/32 dev lo", ip, far)
	line("echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter")
	line("%s rule add pref 1000 lookup local", ip)
	line("%s rule del pref 0", ip)
	for i, src := range srcs {
		dev, table := tunName(i), 100+i
		line("%s addr add %s/32 dev lo", ip, src)
		line("%s link set %s mtu %d up", ip, dev, MTU)
		line("echo 1 > /proc/sys/net/ipv4/conf/%s/accept_local", dev)
		line("echo 0 > /proc/sys/net/ipv4/conf/%s/rp_filter", dev)
		line("%s route add default dev %s table %d", ip, dev, table)
		line("%s rule add pref 100 iif lo from %s lookup %d", ip, src, table)
		line("%s rule add pref 101 iif lo to %s lookup %d", ip, src, table)
	}
	return b.String()
}

// do runs f on a thread inside the namespace.
func (h nsHandle) do(f func() error) error {
	c := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(h.ns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			c <- fmt.Errorf("netem: entering the namespace: %w", err)
			return
		}
		err := f()
		if unix.Setns(h.host, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked, and ends with the goroutine
		c <- err
	}()
	return <-c
}

func (h nsHandle) close() {
	if h.ns >= 0 {
		unix.Close(h.ns)
	}
	unix.Close(h.host)
}
