package engine

import (
	"errors"
	"testing"

	"github.com/flynn/noise"
)

// TestRecordCipherInterop: for both cipher suites, records sealed with
// the AEAD directly open with flynn/noise's own CipherState, and the
// other way round, record after record and across a rekey: the nonce is
// Noise's counter, laid out as Noise says, and REKEY is Noise's.
func TestRecordCipherInterop(t *testing.T) {
	for _, s := range benchSuites[:2] {
		t.Run(s.name, func(t *testing.T) {
			k := fixedKey()
			seal := NewRecordSealerRekey(noise.UnsafeNewCipherState(s.suite, k, 0), 80)
			if seal.c.aead == nil {
				t.Fatal("the sealer does not use the AEAD directly")
			}
			ref := noise.UnsafeNewCipherState(s.suite, k, 0)
			open := NewRecordOpenerRekey(noise.UnsafeNewCipherState(s.suite, k, 0), 80)
			refSeal := noise.UnsafeNewCipherState(s.suite, k, 0)
			since := 0
			for i := range 6 {
				msg := []byte("forty bytes of plaintext, record after r")
				wire, err := seal.Seal(nil, msg)
				if err != nil {
					t.Fatal(err)
				}
				got, err := ref.Decrypt(nil, wire[:RecordHeaderLen], wire[RecordHeaderLen:])
				if err != nil || string(got) != string(msg) {
					t.Fatalf("record %d does not open with the CipherState: %v", i, err)
				}
				// The other way: the CipherState seals, the opener opens.
				hdr := wire[:RecordHeaderLen]
				sealed, err := refSeal.Encrypt(append([]byte(nil), hdr...), hdr, msg)
				if err != nil {
					t.Fatal(err)
				}
				if plain, _, err := open.Decode(nil, sealed, -1); err != nil || string(plain) != string(msg) {
					t.Fatalf("record %d sealed by the CipherState does not open: %v", i, err)
				}
				if since += len(msg); since >= 80 { // every second record
					ref.Rekey()
					refSeal.Rekey()
					since = 0
				}
			}
			if seal.Rekeys != 3 || open.Rekeys != 3 {
				t.Fatalf("rekeys %d and %d, want 3", seal.Rekeys, open.Rekeys)
			}
		})
	}
}

// TestRecordMaxNonce: the last nonce Noise allows seals and opens; the
// record after it is refused on both sides, as the CipherState would.
func TestRecordMaxNonce(t *testing.T) {
	k := fixedKey()
	s := NewRecordSealer(noise.UnsafeNewCipherState(NoiseSuite, k, noise.MaxNonce))
	o := NewRecordOpener(noise.UnsafeNewCipherState(NoiseSuite, k, noise.MaxNonce))
	wire, err := s.Seal(nil, []byte("last"))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _, err := o.Decode(nil, wire, -1); err != nil || string(plain) != "last" {
		t.Fatalf("the last nonce: %q, %v", plain, err)
	}
	if _, err := s.Seal(nil, []byte("one more")); !errors.Is(err, noise.ErrMaxNonce) {
		t.Fatalf("sealing past the last nonce: %v, want ErrMaxNonce", err)
	}
	if _, _, err := o.Decode(nil, wire, -1); err == nil {
		t.Fatal("opening past the last nonce succeeded")
	}
}
