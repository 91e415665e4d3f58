// Package actors owns the actors that move frames between sockets and
// carriers: Listener, Stream (which owns its local socket), Link,
// Scheduler and Carrier, and the Node that runs them on one protoactor-go
// actor system; the UDP forward and its per-client sessions; and the
// shared-upstream actors (the Share hub, its clients and its upstream),
// which run on a Node too.
//
// The actors are thin: the protocol's decisions (codec, stream states,
// windows, scheduling order) are in package engine. Blocking I/O runs only
// in goroutines owned by an actor, which talk to it by message; Receive
// never blocks (a Stream reads and writes its socket itself only with
// non-blocking calls, and leaves any waiting to a goroutine). Messages are
// pointers sent with Send; nothing on the data path waits on a future.
// Mailboxes are unbounded, which is safe because credit bounds what can be
// in flight.
//
// Buffer ownership: a pooled buffer (engine.Buffer) has one owner at a
// time. Putting it in a message hands it over; the last user (the carrier
// writer after a write, a Stream or its writer goroutine after a write to
// the socket, or whoever drops a frame) returns it with engine.PutBuffer.
package actors
