package carriers

// Scheme names the kind of carrier ADDR is: tcp, tls, ws, wss, quic, fifo,
// comm, exec or stdio. An address that does not parse is ErrBadAddress.
func Scheme(addr string) (string, error) {
	a, err := parse(addr)
	if err != nil {
		return "", err
	}
	return a.scheme, nil
}

// UsesTLS tells whether ADDR is a carrier that runs TLS, and so takes the
// certificate, CA and fingerprint options; false for one that does not
// parse.
func UsesTLS(addr string) bool {
	s, err := Scheme(addr)
	return err == nil && (s == "tls" || s == "wss" || s == "quic")
}
