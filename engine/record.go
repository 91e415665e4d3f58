package engine

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/flynn/noise"
)

// The record layer of a keyed carrier (PROTOCOL.md §5.3). Once the Noise
// handshake is over, every byte of the carrier, in each direction, is a
// sequence of records:
//
//	record     = length (u16, big-endian) || ciphertext
//	ciphertext = AEAD(k, n, ad = length, plaintext) (plaintext || 16-byte tag)
//
// length counts the ciphertext, tag included: RecordTagLen+1 to 65535, so a
// record holds 1 to MaxRecordPlaintext bytes. n is the CipherState's
// counter: 0 for the first record of a direction, one more for each, never
// sent and never skipped, so a record replayed, dropped or reordered does
// not open. Each direction rekeys (Noise's REKEY) after every RekeyBytes of
// plaintext, at the same record on both sides, with no message on the wire.
//
// RecordSealer and RecordOpener do no I/O: the caller writes what Seal returns and
// hands Decode what it read.
const (
	// RecordHeaderLen is the length prefix of a record.
	RecordHeaderLen = 2
	// RecordTagLen is the AEAD tag at the end of every record.
	RecordTagLen = 16
	// MaxRecordLen is the largest ciphertext (plaintext and tag) a record
	// holds: what its u16 length can say.
	MaxRecordLen = 1<<16 - 1
	// MaxRecordPlaintext is the most plaintext one record carries.
	MaxRecordPlaintext = MaxRecordLen - RecordTagLen
	// RekeyBytes is how much plaintext one key seals, in each direction,
	// before it is replaced: 1 GiB, a small fraction of what AES-GCM may
	// safely seal under one key with records of this size (about 2^38
	// bytes for an attacker's advantage below 2^-60), and a bound on what
	// a key compromised later would reveal.
	RekeyBytes = 1 << 30
)

// RecordSealer seals one direction of a carrier into records. It is used by one
// goroutine at a time.
type RecordSealer struct {
	c          recordCipher
	since      uint64 // plaintext sealed under the current key
	rekeyEvery uint64
	// Rekeys counts the rekeys so far.
	Rekeys int
}

// NewRecordSealer seals with cs, rekeying every RekeyBytes.
func NewRecordSealer(cs *noise.CipherState) *RecordSealer {
	return &RecordSealer{c: newRecordCipher(cs), rekeyEvery: RekeyBytes}
}

// NewRecordSealerRekey is NewRecordSealer with another rekey interval, for tests of
// the rekey itself; both ends of a direction must use the same.
func NewRecordSealerRekey(cs *noise.CipherState, every uint64) *RecordSealer {
	return &RecordSealer{c: newRecordCipher(cs), rekeyEvery: every}
}

// Seal appends to dst the records that carry p, each of at most
// MaxRecordPlaintext bytes. An empty p seals nothing.
func (s *RecordSealer) Seal(dst, p []byte) ([]byte, error) {
	for len(p) > 0 {
		n := min(len(p), MaxRecordPlaintext)
		if left := s.rekeyEvery - s.since; uint64(n) > left {
			n = int(left) // a record never straddles a rekey
		}
		start := len(dst)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n+RecordTagLen))
		var err error
		dst, err = s.c.seal(dst, dst[start:start+RecordHeaderLen], p[:n])
		if err != nil {
			return dst[:start], fmt.Errorf("sealing a record: %w", err)
		}
		p = p[n:]
		if s.since += uint64(n); s.since >= s.rekeyEvery {
			s.c.rekey()
			s.since, s.Rekeys = 0, s.Rekeys+1
		}
	}
	return dst, nil
}

// SealBuffers appends to dst the records that carry the concatenation of
// bufs, or its first max bytes (max < 0: all of it), and returns dst and
// how many bytes of plaintext it sealed. Each record's plaintext is
// gathered into dst behind its length and sealed there, in place, so a
// batch of frames costs one copy (into dst) beside the cipher, and dst,
// reused, is the only buffer: no allocation once it has grown. bufs is not
// changed.
func (s *RecordSealer) SealBuffers(dst []byte, bufs [][]byte, max int) ([]byte, int, error) {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	if max >= 0 && max < total {
		total = max
	}
	sealed, i, off := 0, 0, 0 // bufs[i][off:] is next
	for sealed < total {
		n := min(total-sealed, MaxRecordPlaintext)
		if left := s.rekeyEvery - s.since; uint64(n) > left {
			n = int(left) // a record never straddles a rekey
		}
		start := len(dst)
		dst = slices.Grow(dst, RecordHeaderLen+n+RecordTagLen)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n+RecordTagLen))
		body := start + RecordHeaderLen
		for len(dst) < body+n {
			if off == len(bufs[i]) {
				i, off = i+1, 0
				continue
			}
			k := min(len(bufs[i])-off, body+n-len(dst))
			dst = append(dst, bufs[i][off:off+k]...)
			off += k
		}
		// Sealed where it lies: the output exactly overlaps the plaintext,
		// which the AEAD allows, and the capacity is there already.
		var err error
		if dst, err = s.c.seal(dst[:body], dst[start:body], dst[body:body+n]); err != nil {
			return dst[:start], sealed, fmt.Errorf("sealing a record: %w", err)
		}
		sealed += n
		if s.since += uint64(n); s.since >= s.rekeyEvery {
			s.c.rekey()
			s.since, s.Rekeys = 0, s.Rekeys+1
		}
	}
	return dst, sealed, nil
}

// SealedLen is the length of the records that carry n bytes of plaintext
// (with no rekey boundary inside them).
func SealedLen(n int) int {
	recs := (n + MaxRecordPlaintext - 1) / MaxRecordPlaintext
	return n + recs*(RecordHeaderLen+RecordTagLen)
}

// RecordOpener opens the records of one direction of a carrier, in order. Once
// a record fails to open, every later call fails the same way: nothing
// after a bad record is believed.
type RecordOpener struct {
	c          recordCipher
	since      uint64
	rekeyEvery uint64
	err        error
	// Rekeys counts the rekeys so far.
	Rekeys int
}

// NewRecordOpener opens with cs, rekeying every RekeyBytes.
func NewRecordOpener(cs *noise.CipherState) *RecordOpener {
	return &RecordOpener{c: newRecordCipher(cs), rekeyEvery: RekeyBytes}
}

// NewRecordOpenerRekey is NewRecordOpener with another rekey interval, for tests.
func NewRecordOpenerRekey(cs *noise.CipherState, every uint64) *RecordOpener {
	return &RecordOpener{c: newRecordCipher(cs), rekeyEvery: every}
}

// RecordLen parses a record's length prefix: the ciphertext that follows
// it. A length too short for a tag and one byte is an ErrIntegrity error.
func RecordLen(hdr []byte) (int, error) {
	n := int(binary.BigEndian.Uint16(hdr))
	if n <= RecordTagLen {
		return 0, fmt.Errorf("%w: record of %d bytes, shorter than its tag", ErrIntegrity, n)
	}
	return n, nil
}

// Decode opens the complete records at the start of src, appending their
// plaintext to dst, and returns dst and how many bytes of src it used; a
// record not complete yet is left for the next call, and so is one whose
// plaintext would take dst past limit bytes (limit < 0: no limit), so a
// caller can open straight into a buffer of its own. A record that does
// not open (altered, replayed, reordered, sealed with another key) is an
// ErrIntegrity error: dst then holds the plaintext of the records before
// it only, and the RecordOpener fails from then on. dst must not overlap src.
func (o *RecordOpener) Decode(dst, src []byte, limit int) ([]byte, int, error) {
	if o.err != nil {
		return dst, 0, o.err
	}
	used, room := 0, limit
	if limit < 0 {
		room = int(^uint(0) >> 1)
	}
	for len(src)-used >= RecordHeaderLen {
		hdr := src[used : used+RecordHeaderLen]
		n, err := RecordLen(hdr)
		if err != nil {
			o.err = err
			return dst, used, err
		}
		if len(src)-used-RecordHeaderLen < n || n-RecordTagLen > room {
			break
		}
		room -= n - RecordTagLen
		body := src[used+RecordHeaderLen : used+RecordHeaderLen+n]
		n0 := o.c.n
		out, err := o.c.open(dst, hdr, body)
		if err != nil {
			o.err = fmt.Errorf("%w: record %d does not open (altered, replayed, reordered or sealed with another key)", ErrIntegrity, n0)
			return dst, used, o.err
		}
		dst = out
		used += RecordHeaderLen + n
		if o.since += uint64(n - RecordTagLen); o.since >= o.rekeyEvery {
			o.c.rekey()
			o.since, o.Rekeys = 0, o.Rekeys+1
		}
	}
	return dst, used, nil
}

// Err is the RecordOpener's failure, or nil.
func (o *RecordOpener) Err() error { return o.err }
