// Package bench owns sockmux's benchmark harness: the systems compared, the
// servers and load they run, the link emulator, the figures and ratios
// reported, and the charts.
//
// The systems (Systems) are built the same way and measured in the same
// run: a plain relay chain with as many sockets as a tunnel (the physical
// limit), tunnels on hashicorp/yamux and xtaci/smux with their default
// configurations, and sockmux with its defaults. Each workload runs through
// each of them and every result is checked (bytes counted and framed, each
// answer compared), not just timed; every figure is reported with its
// ratio to the relay chain (x-relay) and to the better of yamux and smux
// (x-mux) from the same run (Scoreboard).
//
// The workloads: bulk on one stream and on 64 (MeasureBulk); 64-byte
// request and response (MeasureRoundTrips); 10,000 idle streams, each peer
// in a helper process of its own (Idle); one stream and 64 across an
// emulated 50 ms, 1 Gbit/s path (MeasureWAN, with Emulator); a new
// connection's time to its first answer across that path, against
// connecting directly (MeasureFirstResponse); a hub process holding
// 10,000 idle edge links, its resident memory per link and its CPU while
// only keepalives run (MeasureIdleLinks, LinkHubs: `sockmux listen`,
// sockmux's Node and yamux sessions, the edges in helper processes).
//
// Paths that really differ, at the packet level, come from the netem
// subpackage (bench/netem): a private network namespace where each source
// address is its own path, netem.Path{Rate, Delay, Loss, Queue}, with
// Cut and Restore; the peers' kernels see the delay and the losses end to
// end (Emulator, by contrast, relays TCP in userspace). The bonding
// benchmarks (bond_test.go, BenchmarkBond*) use it, one stream striped
// over carriers bound to two source addresses as connect --bind-carrier
// does; so can any benchmark wanting "a 50 ms path with 1% loss"
// (netem.New, Net.Listen on Net.Far, Net.Dial or Net.Do from Source(i)).
//
// The benchmarks are in bench_test.go (go test -bench . ./bench/; with
// SOCKMUX_BENCH_CHARTS=DIR they also write DIR/throughput.svg,
// DIR/wan-window.svg and DIR/figures.txt); Run is the same workloads for a
// tuning run, behind cmd/sockmux-bench. BENCHMARKS.md at the root holds the
// figures and the commands that made them.
package bench
