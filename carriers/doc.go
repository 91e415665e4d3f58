// Package carriers owns how a link's byte pipe is made: dialling and
// listening for carrier connections by address. Every carrier is a
// net.Conn with deadlines, whose Close unblocks a pending Read and Write,
// so the actors that move frames do not care which kind it is.
//
// The addresses of NewDialer and Listen:
//
//	host:port, tcp://host:port   TCP, Nagle off.
//	tls://host:port              TLS 1.3 over TCP (TLSConfig through WithTLS).
//	                             The listener uses a given certificate or one
//	                             it generates once and keeps in a state
//	                             directory, and logs its SHA-256 fingerprint;
//	                             the dialler verifies with a CA file or pins
//	                             the fingerprint. Client certificates are
//	                             optional mutual authentication.
//	ws://host[:port]/path        a WebSocket over TCP (port 80 by default), the
//	                             link's bytes in binary messages. The listener
//	                             serves the upgrade on its path, answers
//	                             anything else with a plain 404, and gates
//	                             its connections as a TLS listener does until
//	                             they are upgraded.
//	wss://host[:port]/path       a WebSocket over TLS 1.3 (port 443), with the
//	                             TLSConfig of tls://; without a CA file or a
//	                             fingerprint the dialler verifies against the
//	                             system's roots.
//	quic://host:port             one bidirectional QUIC stream over UDP
//	                             (quic-go), TLS 1.3 inside QUIC with the
//	                             TLSConfig of tls://. A listener is one UDP
//	                             socket; a carrier follows its peer's new
//	                             address after a NAT rebinding.
//	fifo:READ_PATH,WRITE_PATH    a pair of named pipes, made when absent; the
//	                             peer names the same two in the other order.
//	comm:PATH                    one bidirectional file: a unix socket (made by
//	                             Listen when PATH does not exist) or a
//	                             character device such as a tty or serial
//	                             line, put in raw mode.
//	exec:COMMAND                 dial only: the stdin and stdout of
//	                             `sh -c COMMAND`; its stderr goes to the log.
//
// The TCP-based kinds (tcp, tls, ws, wss) dial through an HTTP (CONNECT)
// or SOCKS5 proxy given with WithProxy, or named by the environment as
// curl reads it (WithProxyFromEnvironment).
//
// Stdio makes a carrier of this process's stdin and stdout, for
// `sockmux stdio`. A fifo: or comm: device listener holds one peer at a
// time: its Accept opens the carrier again once the connection it returned
// before is closed. Streams of another link plug in behind the same
// Dialer and net.Listener.
//
// What needs the OS is in files by build tag (*_unix.go, *_linux.go,
// *_windows.go, comm_tty*.go). Where a kind cannot work (fifo: and comm:
// devices on Windows, binding to an interface outside Linux) it fails
// with ErrUnsupported (errors.ErrUnsupported) naming the feature and the
// OS; exec: runs `cmd /C` on Windows.
package carriers
