// Package netem owns the kernel-level path emulator of the benchmarks: a
// private network namespace in which each path is its own source address,
// and every packet sent from or to that address crosses a path with its own
// rate, one-way delay, loss and bottleneck queue (Path).
//
// Unlike bench.Emulator (a userspace TCP relay, which ends each TCP
// connection at the relay), the packets here belong to one TCP (or UDP)
// connection end to end: the peers' own kernels see the delay, the losses
// and the queue, and their congestion control, retransmissions and socket
// buffers act as they would across a real path.
//
// How: tc's netem qdisc would be the obvious tool, but kernels built
// without CONFIG_NET_SCH_NETEM (this project's test machines among them)
// do not have it, so the shaping is done here instead. New makes a network
// namespace (unshare on a locked thread) holding, on lo, the far side's
// address (Far, 10.77.0.1) and one source address per path (Source(i),
// 10.77.i+1.2), plus a tun device per path. Policy rules, ahead of the
// local table, send what the host itself sends from or to a path's source
// address (iif lo) to that path's tun device; a goroutine reads each
// packet there, holds it as the path says (a bottleneck of Rate bytes a
// second per direction behind a queue of Queue link-time, tail drop; then
// Delay; Loss at random) and writes it back, and the kernel delivers it
// locally. IPv4 only; the address of a packet tells its direction.
//
// Sockets belong to the namespace their thread was in when they were made:
// Do runs a function on a thread inside the namespace, and Listen,
// ListenPacket and Dial are the usual calls made there. Dialling from a
// path is binding to its source address (net.Dialer.LocalAddr, or
// carriers.WithLocalBinds as connect --bind-carrier does). Cut black-holes
// a path (every packet dropped, both ways, the queue too) until Restore;
// Set changes a path while it runs; Stats counts what each path did.
//
// Making a namespace needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root, not only
// a user namespace: a process with threads cannot enter a new one), the
// tun device and the ip program (iproute2); New says ErrUnavailable,
// wrapped with the reason, where any is missing, so a benchmark can skip.
//
// Example, a 50 ms path with 1% loss and a 100 Mbit/s one:
//
//	n, err := netem.New(netem.Path{Delay: 25 * time.Millisecond, Loss: 0.01},
//		netem.Path{Rate: 100 * netem.Mbit, Delay: 5 * time.Millisecond})
//	if errors.Is(err, netem.ErrUnavailable) { b.Skip(err) }
//	defer n.Close()
//	ln, _ := n.Listen("tcp", n.Far().String()+":0")
//	c, _ := n.Dial(ctx, "tcp", n.Source(0), ln.Addr().String())
package netem
