package engine

import (
	"testing"

	"github.com/flynn/noise"
)

// The cipher suite is chosen by these (BENCHMARKS.md, "Cipher suite"):
//
//	go test ./engine -run '^$' -bench 'Record|NoiseHandshake' -benchtime 2s
var benchSuites = []struct {
	name  string
	suite noise.CipherSuite
}{
	{"AESGCM_SHA256", noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256)},
	{"ChaChaPoly_SHA256", noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)},
	{"AESGCM_BLAKE2s", noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashBLAKE2s)},
	{"ChaChaPoly_BLAKE2s", noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)},
}

// BenchmarkRecordSealOpen seals and opens 1 MiB in full-size records.
func BenchmarkRecordSealOpen(b *testing.B) {
	for _, s := range benchSuites[:2] { // the hash plays no part in records
		b.Run(s.name, func(b *testing.B) {
			k := fixedKey()
			seal := NewRecordSealer(noise.UnsafeNewCipherState(s.suite, k, 0))
			open := NewRecordOpener(noise.UnsafeNewCipherState(s.suite, k, 0))
			msg := make([]byte, 1<<20)
			var wire, plain []byte
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				var err error
				if wire, err = seal.Seal(wire[:0], msg); err != nil {
					b.Fatal(err)
				}
				if plain, _, err = open.Decode(plain[:0], wire, -1); err != nil || len(plain) != len(msg) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNoiseHandshake runs both sides of an NNpsk0 handshake.
func BenchmarkNoiseHandshake(b *testing.B) {
	psk := NoisePSK(testKey)
	for _, s := range benchSuites {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				cfg := noise.Config{CipherSuite: s.suite, Pattern: noise.HandshakeNN, Prologue: []byte("p"),
					PresharedKey: psk, PresharedKeyPlacement: 0}
				cfg.Initiator = true
				d, _ := noise.NewHandshakeState(cfg)
				cfg.Initiator = false
				a, _ := noise.NewHandshakeState(cfg)
				m1, _, _, _ := d.WriteMessage(nil, nil)
				if _, _, _, err := a.ReadMessage(nil, m1); err != nil {
					b.Fatal(err)
				}
				m2, _, _, _ := a.WriteMessage(nil, nil)
				if _, c1, _, err := d.ReadMessage(nil, m2); err != nil || c1 == nil {
					b.Fatal(err)
				}
			}
		})
	}
}
