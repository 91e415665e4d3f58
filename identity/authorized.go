package identity

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode"

	"github.com/sockmux/sockmux/internal/forward"
)

// An authorized keys file names the peers a listener admits, one a line,
// as ssh's authorized_keys does: options, if any, then the key line.
//
//	# comment
//	name="laptop",permit-target="10.0.0.0/8:*",permit-listen="127.0.0.1:8080" sockmux-x25519 BASE64 alice@laptop
//	sockmux-x25519 BASE64 bob
//
// Options are comma-separated, each name="value" with the value in
// double quotes (a '"' or '\' inside escaped with '\'):
//
//	permit-listen="host:port"  a -R the peer may ask (repeatable; patterns as --allow-listen)
//	permit-target="host:port"  a target the peer may reach (repeatable; patterns as --allow-target)
//	name="..."                 what logs, status and metrics call the peer
//
// With no permit-listen (permit-target), the key adds no limit of its own
// to this side's --allow-listen (--allow-target); with some, both must
// allow. A key listed twice, an unknown option or a bad pattern is an
// error that names its line.

// MaxNameLen bounds a name= option.
const MaxNameLen = 64

// Entry is one authorized key and its options.
type Entry struct {
	Key     PublicKey
	Comment string
	// Name is the name= option, or "".
	Name string
	// PermitListen and PermitTarget are the key's limits (nil: none).
	PermitListen *forward.TargetPolicy
	PermitTarget *forward.TargetPolicy
	// Line is where the entry is in the file.
	Line int
}

// Label is how logs call the peer: its name, or its key.
func (e *Entry) Label() string {
	if e.Name != "" {
		return e.Name
	}
	return e.Key.String()
}

// AuthorizedKeys is a parsed authorized keys file.
type AuthorizedKeys struct {
	entries map[PublicKey]*Entry
	text    []byte // the file's content, to tell a changed file from the same
}

// ParseAuthorizedKeys parses an authorized keys file's content.
func ParseAuthorizedKeys(data []byte) (*AuthorizedKeys, error) {
	ak := &AuthorizedKeys{entries: map[PublicKey]*Entry{}, text: bytes.Clone(data)}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		e, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrBadAuthorizedKeys, n, err)
		}
		e.Line = n
		if prev, dup := ak.entries[e.Key]; dup {
			return nil, fmt.Errorf("%w: line %d: the key of line %d again", ErrBadAuthorizedKeys, n, prev.Line)
		}
		ak.entries[e.Key] = e
	}
	return ak, nil
}

// LoadAuthorizedKeys reads and parses an authorized keys file.
func LoadAuthorizedKeys(path string) (*AuthorizedKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ak, err := ParseAuthorizedKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ak, nil
}

// Lookup is the entry of key, or nil when it is not authorized. A nil
// AuthorizedKeys authorizes nothing.
func (ak *AuthorizedKeys) Lookup(key PublicKey) *Entry {
	if ak == nil {
		return nil
	}
	return ak.entries[key]
}

// Len is how many keys are authorized.
func (ak *AuthorizedKeys) Len() int {
	if ak == nil {
		return 0
	}
	return len(ak.entries)
}

// Equal tells whether two files said the same (nil is no file).
func (ak *AuthorizedKeys) Equal(o *AuthorizedKeys) bool {
	if ak == nil || o == nil {
		return ak == o
	}
	return bytes.Equal(ak.text, o.text)
}

func parseEntry(line string) (*Entry, error) {
	e := &Entry{}
	rest := line
	if !strings.HasPrefix(line, PublicType+" ") && !strings.HasPrefix(line, PublicType+"\t") {
		var err error
		if rest, err = parseOptions(line, e); err != nil {
			return nil, err
		}
	}
	f := strings.Fields(rest)
	if len(f) < 2 || f[0] != PublicType {
		return nil, fmt.Errorf("want [options] %s BASE64 [comment]", PublicType)
	}
	k, comment, err := ParsePublicKey(rest)
	if err != nil {
		return nil, err
	}
	e.Key, e.Comment = k, comment
	return e, nil
}

// parseOptions reads the options at the start of s into e and returns
// what follows them (the key line).
func parseOptions(s string, e *Entry) (string, error) {
	var listen, target []string
	for {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || strings.ContainsAny(s[:eq], " \t,\"") {
			end := strings.IndexAny(s, " \t,=")
			if end < 0 {
				end = len(s)
			}
			return "", fmt.Errorf("option %q: want name=\"value\"", s[:end])
		}
		name := s[:eq]
		val, rest, err := unquote(s[eq+1:])
		if err != nil {
			return "", fmt.Errorf("option %s: %w", name, err)
		}
		switch name {
		case "permit-listen", "permit-target":
			if _, err := forward.ParseTargetPolicy(val); err != nil {
				return "", fmt.Errorf("option %s=%q: %w", name, val, err)
			}
			if name == "permit-listen" {
				listen = append(listen, val)
			} else {
				target = append(target, val)
			}
		case "name":
			if e.Name != "" {
				return "", fmt.Errorf("option name given twice")
			}
			if err := checkName(val); err != nil {
				return "", fmt.Errorf("option name=%q: %w", val, err)
			}
			e.Name = val
		default:
			return "", fmt.Errorf("unknown option %q (want permit-listen, permit-target or name)", name)
		}
		switch {
		case strings.HasPrefix(rest, ","):
			s = rest[1:]
			continue
		case rest == "" || (rest[0] != ' ' && rest[0] != '\t'):
			return "", fmt.Errorf("after option %s: want ',' and another option, or a space and the key", name)
		}
		var err2 error
		if len(listen) > 0 {
			e.PermitListen, err2 = forward.ParseTargetPolicy(listen...)
		}
		if err2 == nil && len(target) > 0 {
			e.PermitTarget, err2 = forward.ParseTargetPolicy(target...)
		}
		return strings.TrimLeft(rest, " \t"), err2
	}
}

// unquote reads a double-quoted value at the start of s and returns it
// and what follows the closing quote.
func unquote(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", fmt.Errorf("the value must be in double quotes")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return "", "", fmt.Errorf("unterminated quoted value")
			}
			i++
			b.WriteByte(s[i])
		case '"':
			if b.Len() == 0 {
				return "", "", fmt.Errorf("empty value")
			}
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated quoted value")
}

// checkName refuses a name= that logs could not show as it is.
func checkName(s string) error {
	if len(s) > MaxNameLen {
		return fmt.Errorf("longer than %d bytes", MaxNameLen)
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return fmt.Errorf("holds a character that is not printable")
		}
	}
	return nil
}
