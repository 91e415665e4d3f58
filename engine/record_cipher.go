package engine

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"

	"github.com/flynn/noise"
)

// recordCipher is one direction's cipher and nonce, Noise's CipherState
// rules kept here rather than in the CipherState (noise.go has the
// suite): the nonce n is a counter from the CipherState's, one more per
// record, never reused, never skipped, refused past 2^64-2 (Noise's
// MaxNonce); REKEY is the CipherState's own (Noise §11.3), after which
// the counter carries on.
//
// Why not CipherState.Encrypt: flynn/noise makes each nonce in a new
// 12-byte slice, an allocation per record, and goes through two
// interfaces. Its Cipher is, for AESGCM and ChaChaPoly, the standard
// library's cipher.AEAD, so the records are sealed with that directly and
// the nonce is built in a buffer of this struct. The nonce's layout
// (Noise's: 4 zero bytes and n, big-endian for AESGCM, little-endian for
// ChaChaPoly) is not assumed: it is the one of the two that reproduces the
// cipher's own output, checked when the key is set; if neither does, the
// records go through the Cipher interface, as before.
type recordCipher struct {
	cs    *noise.CipherState // kept for REKEY
	c     noise.Cipher
	aead  cipher.AEAD // c as the AEAD it is, or nil
	n     uint64
	big   bool // the nonce's counter is big-endian
	nonce [12]byte
}

func newRecordCipher(cs *noise.CipherState) recordCipher {
	rc := recordCipher{cs: cs, n: cs.Nonce()}
	rc.setCipher()
	return rc
}

// setCipher takes the CipherState's current cipher (after a REKEY: the
// new one) and finds its nonce layout.
func (rc *recordCipher) setCipher() {
	rc.c = rc.cs.Cipher() // the CipherState's own Encrypt is not used from now on
	rc.aead = nil
	aead, ok := rc.c.(cipher.AEAD)
	if !ok || aead.NonceSize() != len(rc.nonce) || aead.Overhead() != RecordTagLen {
		return
	}
	const probe = 1
	want := rc.c.Encrypt(nil, probe, nil, nil)
	for _, big := range []bool{true, false} {
		rc.big = big
		if bytes.Equal(aead.Seal(nil, rc.nonceFor(probe), nil, nil), want) {
			rc.aead = aead
			return
		}
	}
}

// nonceFor is n laid out as the cipher's nonce, in rc's buffer.
func (rc *recordCipher) nonceFor(n uint64) []byte {
	if rc.big {
		binary.BigEndian.PutUint64(rc.nonce[4:], n)
	} else {
		binary.LittleEndian.PutUint64(rc.nonce[4:], n)
	}
	return rc.nonce[:]
}

// seal appends the sealed plaintext to out, with the next nonce. out may
// exactly overlap plaintext (out[len(out):] is where plaintext starts),
// which seals it in place.
func (rc *recordCipher) seal(out, ad, plaintext []byte) ([]byte, error) {
	if rc.n > noise.MaxNonce {
		return out, noise.ErrMaxNonce
	}
	n := rc.n
	rc.n++
	if rc.aead != nil {
		return rc.aead.Seal(out, rc.nonceFor(n), plaintext, ad), nil
	}
	return rc.c.Encrypt(out, n, ad, plaintext), nil
}

// open appends the opened ciphertext to out, with the next nonce, which
// is used up only when the record opens.
func (rc *recordCipher) open(out, ad, ciphertext []byte) ([]byte, error) {
	if rc.n > noise.MaxNonce {
		return out, noise.ErrMaxNonce
	}
	var (
		plain []byte
		err   error
	)
	if rc.aead != nil {
		plain, err = rc.aead.Open(out, rc.nonceFor(rc.n), ciphertext, ad)
	} else {
		plain, err = rc.c.Decrypt(out, rc.n, ad, ciphertext)
	}
	if err != nil {
		return out, err
	}
	rc.n++
	return plain, nil
}

// rekey replaces the key with Noise's REKEY of it; the nonce counts on.
func (rc *recordCipher) rekey() {
	rc.cs.Rekey()
	rc.setCipher()
}
