// Package sockmux multiplexes many streams over one link between two
// peers, the way hashicorp/yamux and xtaci/smux do, riding one carrier
// connection or several at once: any net.Conn (a TCP connection, a TLS
// one, a net.Pipe, a WebSocket).
//
// One side calls Client on its carrier connection, the other Server on
// its own; each gets a Session. Either side may Open a stream, naming a
// target the other side receives with it (Stream.Target): a service
// name, an address, whatever the application means by it. The other
// side takes it with AcceptStream (or Accept: a Session is a
// net.Listener). A Stream is a net.Conn with CloseWrite.
//
// What the link does beyond a plain multiplexer comes through the Config:
//
//   - Flow control per stream, with windows that grow while they, not
//     the reader, are the limit (Window, MaxWindow), inside a memory
//     budget per link (LinkBudget): a stream nobody reads holds at most
//     its window and never stalls the others.
//   - A pre-shared key (Key) or static key pairs (Identity, PeerKey,
//     AuthorizedKeys): the peers prove themselves in a Noise handshake and
//     every byte after it is encrypted.
//   - Striping: with a Dialer and Carriers above one, the client dials
//     more carrier connections and the link spreads frames over all of
//     them; the server takes each with AddCarrier.
//   - Resumption: a client whose carriers all drop dials again (Dialer)
//     and the link, its streams and what was in flight carry on, within
//     ResumeWindow.
//
// A stream cut short (reset by either side, refused, its link gone)
// reaches the application as an error for which
// errors.Is(err, ErrStreamReset) holds, never as a clean io.EOF.
//
// # Peers: the sockmux command as a library
//
// A Peer is what the sockmux command runs (listen, connect, stdio, run),
// for a program that wants the forwarding as well as the links: links to
// any number of peers, accepted (Serve) or dialled and kept up
// (Connect, with failover addresses), and -L, -R, -D and UDP forwards
// over them (PeerConfig, AddForward, SetRemotes), with the target and
// listen policies, keys and authorized keys the command takes from its
// flags (SetPolicies replaces them live). A Peer carries each forwarded
// connection between its socket and its stream itself. A Share is
// `sockmux share`: many clients on one upstream session. The command is
// built on these two and the Session's carriers (package carriers), so
// everything it does a program can do the same way.
//
// The protocol (docs/PROTOCOL.md) and the machinery are sockmux's own:
// the Session runs the same actors (package actors) the sockmux command
// runs its links with. Every Session of a process runs them on one shared
// actor system, whose few worker goroutines start with the first Session;
// a Session costs its link and streams, and sessions see nothing of each
// other's.
package sockmux
