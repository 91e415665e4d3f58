package identity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A known hosts file pins the listeners a dialler has met, one a line,
// as ssh's known_hosts does: the address as the dialler names it, then
// the listener's public key line.
//
//	# comment
//	hub.example:7000 sockmux-x25519 BASE64 [comment]
//
// `connect --known-hosts FILE --trust-new` appends the key of a listener
// the file does not name; a key that differs from the one named is
// always refused.
//
// Addresses are compared as KnownHostAddr writes them: a tcp carrier's
// with or without its "tcp://" (the default kind), and never with the
// proxy it was reached through, so a line written by hand, one recorded
// by --trust-new, and a dial through --proxy or HTTPS_PROXY all name the
// same listener.

// KnownHosts is a parsed known hosts file.
type KnownHosts struct {
	hosts map[string]PublicKey
}

// ParseKnownHosts parses a known hosts file's content. An address listed
// twice is an error, as is any line that does not parse; each names its
// line.
func ParseKnownHosts(data []byte) (*KnownHosts, error) {
	kh := &KnownHosts{hosts: map[string]PublicKey{}}
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		host, key, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: want ADDRESS %s BASE64", ErrBadKnownHosts, n, PublicType)
		}
		if !strings.HasPrefix(strings.TrimSpace(key), PublicType+" ") {
			return nil, fmt.Errorf("%w: line %d: want ADDRESS %s BASE64", ErrBadKnownHosts, n, PublicType)
		}
		k, _, err := ParsePublicKey(key)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrBadKnownHosts, n, err)
		}
		host = KnownHostAddr(host)
		if prev, dup := seen[host]; dup {
			return nil, fmt.Errorf("%w: line %d: %s is on line %d already", ErrBadKnownHosts, n, host, prev)
		}
		seen[host] = n
		kh.hosts[host] = k
	}
	return kh, nil
}

// LoadKnownHosts reads a known hosts file; one that does not exist yet is
// empty.
func LoadKnownHosts(path string) (*KnownHosts, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &KnownHosts{hosts: map[string]PublicKey{}}, nil
	}
	if err != nil {
		return nil, err
	}
	kh, err := ParseKnownHosts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kh, nil
}

// Lookup is the key pinned for host (an address as KnownHostAddr takes
// it).
func (kh *KnownHosts) Lookup(host string) (PublicKey, bool) {
	k, ok := kh.hosts[KnownHostAddr(host)]
	return k, ok
}

// KnownHostAddr is the listener's address that a known hosts line names,
// from a carrier's address as a dialler gives it: without the proxy it
// is reached through (" via ..."), and a tcp carrier's without its
// "tcp://" ("tcp://hub:7000" and "hub:7000" are the same listener).
func KnownHostAddr(addr string) string {
	if i := strings.Index(addr, " via "); i >= 0 {
		addr = addr[:i]
	}
	return strings.TrimPrefix(addr, "tcp://")
}

// AddKnownHost appends host's key to the known hosts file at path,
// creating it (mode 0600, its directory 0700) if need be.
func AddKnownHost(path, host string, key PublicKey) error {
	host = KnownHostAddr(host)
	if strings.ContainsAny(host, " \t\r\n") {
		return fmt.Errorf("%w: address %q holds a space", ErrBadKnownHosts, host)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%s %s\n", host, key); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
