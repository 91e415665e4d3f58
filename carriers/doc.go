// Package carriers owns how a link's byte pipe is made: dialling and
// listening for carrier connections by address. Every carrier is a
// net.Conn, so the actors that move frames do not care which kind it is;
// TCP is here now, and TLS, named pipes, commands, stdio and streams of
// another link plug in behind the same Dialer and Listen.
package carriers
