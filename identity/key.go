package identity

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flynn/noise"
)

// Key types, the first word of a key line.
const (
	// PublicType starts a public key line.
	PublicType = "sockmux-x25519"
	// PrivateType starts a private key file.
	PrivateType = "sockmux-x25519-private"
	// KeyLen is the length of an X25519 key, public or private.
	KeyLen = 32
)

// PublicKey is an X25519 public key: a peer's identity.
type PublicKey [KeyLen]byte

// String is the key as a line without comment: "sockmux-x25519 BASE64".
func (k PublicKey) String() string {
	return PublicType + " " + base64.StdEncoding.EncodeToString(k[:])
}

// Line is the key's public key line, with comment when there is one.
func (k PublicKey) Line(comment string) string {
	if comment == "" {
		return k.String()
	}
	return k.String() + " " + comment
}

// ParsePublicKey reads a public key line ("sockmux-x25519 BASE64
// [comment]") or its base64 alone, and returns the key and the comment.
func ParsePublicKey(s string) (PublicKey, string, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return PublicKey{}, "", fmt.Errorf("%w: empty", ErrBadKey)
	}
	b64 := f[0]
	comment := ""
	if f[0] == PublicType {
		if len(f) < 2 {
			return PublicKey{}, "", fmt.Errorf("%w: %s with no key after it", ErrBadKey, PublicType)
		}
		b64 = f[1]
		comment = strings.Join(f[2:], " ")
	} else if len(f) > 1 {
		return PublicKey{}, "", fmt.Errorf("%w: %q is not a key type (want %s)", ErrBadKey, f[0], PublicType)
	}
	k, err := decodeKey(b64)
	if err != nil {
		return PublicKey{}, "", err
	}
	return PublicKey(k), comment, nil
}

func decodeKey(b64 string) ([KeyLen]byte, error) {
	var k [KeyLen]byte
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return k, fmt.Errorf("%w: not base64: %w", ErrBadKey, err)
	}
	if len(b) != KeyLen {
		return k, fmt.Errorf("%w: %d bytes, an X25519 key has %d", ErrBadKey, len(b), KeyLen)
	}
	copy(k[:], b)
	return k, nil
}

// PrivateKey is this side's identity: an X25519 key pair and a comment.
type PrivateKey struct {
	Private [KeyLen]byte
	Public  PublicKey
	Comment string
}

// Generate makes a fresh key pair.
func Generate(comment string) (*PrivateKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	return fromPrivate(k.Bytes(), comment)
}

func fromPrivate(priv []byte, comment string) (*PrivateKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	p := &PrivateKey{Comment: comment}
	copy(p.Private[:], k.Bytes())
	copy(p.Public[:], k.PublicKey().Bytes())
	return p, nil
}

// DHKey is the key pair as the Noise handshake takes it.
func (p *PrivateKey) DHKey() noise.DHKey {
	return noise.DHKey{Private: bytes.Clone(p.Private[:]), Public: bytes.Clone(p.Public[:])}
}

// Marshal is the private key file's content: one line,
// "sockmux-x25519-private BASE64 comment".
func (p *PrivateKey) Marshal() []byte {
	s := PrivateType + " " + base64.StdEncoding.EncodeToString(p.Private[:])
	if p.Comment != "" {
		s += " " + p.Comment
	}
	return []byte(s + "\n")
}

// ParsePrivateKey reads a private key file's content.
func ParsePrivateKey(data []byte) (*PrivateKey, error) {
	f := strings.Fields(string(data))
	if len(f) < 2 || f[0] != PrivateType {
		return nil, fmt.Errorf("%w: not a sockmux private key (want a line %q, as sockmux keygen writes)", ErrBadKey, PrivateType+" BASE64")
	}
	k, err := decodeKey(f[1])
	if err != nil {
		return nil, err
	}
	return fromPrivate(k[:], strings.Join(f[2:], " "))
}

// LoadPrivateKey reads a private key file, which only its owner may read
// (as ssh insists).
func LoadPrivateKey(path string) (*PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; make it private with: chmod 600 %s", ErrKeyMode, path, st.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Write writes the private key to path (mode 0600) and its public key
// line to path.pub (mode 0644). An existing file is an error unless force.
func (p *PrivateKey) Write(path string, force bool) error {
	if !force {
		for _, f := range []string{path, path + ".pub"} {
			if _, err := os.Lstat(f); err == nil {
				return fmt.Errorf("%w: %s (pass --force to replace it)", ErrKeyExists, f)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := writeFile(path, p.Marshal(), 0o600); err != nil {
		return err
	}
	return writeFile(path+".pub", []byte(p.Public.Line(p.Comment)+"\n"), 0o644)
}

// writeFile replaces path with data at mode, through a temporary file, so
// a key is never seen half written or with a wider mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
