// Package proxy owns the proxy protocols a -D forward (or "-R port:socks")
// speaks to its clients: the SOCKS5 and HTTP CONNECT handshakes, plain-HTTP
// proxy requests, and their replies. It reads a client's request from the
// reader it is given and writes its replies to the writer: the socket is
// the caller's.
package proxy
