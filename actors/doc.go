// Package actors owns the actors that move frames between sockets and
// carriers: Listener, Stream (which owns its local socket), Link,
// Scheduler and Carrier, and the Node that runs them on one protoactor-go
// actor system (its own, or one shared by many nodes: system.go; the
// library's Sessions share one); the UDP forward and its per-client sessions; and the
// shared-upstream actors (the Share hub, its clients and its upstream),
// which run on a Node too.
//
// The library's streams (local.go, local_conn.go): with
// Config.AcceptStream set, a stream the peer opens is handed to the
// application as a LocalConn instead of dialled, and Node.OpenLocal opens
// one; the Stream actor holds the other end of an in-memory pipe where it
// would hold a socket, taking the application's writes and handing it the
// peer's bytes as pooled buffers, without a copy.
//
// Pooled reverse forwards (pool.go, pool_peers.go, splice.go): links that
// bind one address under one pool name share its socket, each connection
// going to the member with the fewest open streams; in a hub cluster a
// pool also holds other hubs' shares (Node.SetPoolPeers), weighed by the
// edges they hold, and a stream another hub brings for one of this node's
// reverse forwards is spliced to the forward's link in process (an
// in-memory pipe, never a dial of its own address nor a hop onwards). A
// UDP pool (pool_udp.go) spreads client flows the same way; in a hub
// cluster it has a loopback door whose flows, those other hubs bring, go
// to its own members only.
//
// The actors are thin: the protocol's decisions (codec, stream states,
// windows, scheduling order) are in package engine. Blocking I/O runs only
// in goroutines owned by an actor, which talk to it by message; Receive
// never blocks (a Stream reads and writes its socket itself only with
// non-blocking calls, and leaves any waiting to a goroutine or its link's
// poller). Messages are pointers sent with Send; nothing on the data path
// waits on a future. Mailboxes are unbounded, which is safe because credit
// bounds what can be in flight.
//
// The data path (strand.go, poller_linux.go, queue.go): the actors of one
// link (the Link, its Scheduler, Carriers and Streams) run on the link's
// strand, one at a time, so a message between them is queued for the
// goroutine already running instead of waking another. That goroutine is
// the one the outside world woke: the link's poller (one epoll set of its
// streams' sockets) when a socket becomes readable, a carrier's reader
// when frames arrive, a node worker otherwise. A request thus crosses a
// node on one goroutine: the poller wakes, the Stream reads its socket
// and hands DATA to the Scheduler, which batches what one mailbox run
// produced and hands it to the carrier's queue, which writes it at once
// with one writev while its writer goroutine is idle. The other way, the
// carrier's reader hands a batch of frames to the Link, which hands DATA
// to the Stream, which writes its socket. These calls never wait, and are
// raw system calls (sysio_linux.go): a call made the usual way wakes Go's
// sysmon thread from its sleep, a thread wake-up per message. So does a
// new connection's whole life on Linux: a forward's listener accepts with
// raw accept4 (listenTCP, rawaccept_linux.go) and a loopback target is
// dialled raw (dialNow), both giving an *rawsock.Conn whose options,
// shutdown and close are raw calls, where Go's net made a dozen calls the
// usual way per connection on each peer (internal/rawsock). Elsewhere
// (rawio.go): on the other unixes the same reads and writes go through
// syscall and Go's poller, with no epoll set; on Windows, and for a
// connection with no descriptor, a stream or carrier takes the portable
// path, a goroutine blocked in Read and writes with Write (TestPortableIO
// runs it on Linux). A keyed carrier over a socket takes the same path:
// its sealed conn (carriers.Sealed) seals the batch into records for the
// queue's one write (SealNow) and keeps what the socket did not take for
// the writer goroutine, and its records are read with the same raw reads.
//
// An idle link costs little (a hub holds thousands): a carrier's writer
// goroutine runs only while writes wait for it (the queue's push starts
// it, and it ends when it finds the queue empty), and its reader reads
// into a small array while the carrier is quiet, taking its large read
// buffers (engine.Reader's, the sealed conn's) from a pool only while
// reads bring more.
//
// Buffer ownership: a pooled buffer (engine.Buffer) has one owner at a
// time, and putting it in a message hands it over. A Stream owns what it
// reads from its socket until it sends it as DATA to the Scheduler, which
// owns it until it hands the frame to a carrier's queue (frameQueue.push);
// the queue owns it until it is written, by push itself or by the
// carrier's writer goroutine, which then returns it; a sequenced frame has
// a second share in the Scheduler's resend buffer (engine.Resender) until
// the peer acknowledges it. The other way, a carrier's reader owns the
// buffers it decodes until its inFrame or inFrames hands them to the
// Link, which hands DATA on to the Stream; the Stream owns them until they
// are written to its socket (or, if the socket does not take them, until
// its write queue does, whose writer goroutine returns them once
// written). The poller holds no buffer. Whoever drops a frame or a
// message holding one returns what it holds: a message that a stopped
// actor never took is freed by its own release method (holder).
package actors
