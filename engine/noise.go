package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/flynn/noise"
)

// The secure channel of a keyed carrier (PROTOCOL.md §5.2): when both
// peers have a pre-shared key, AUTH frames carry the two messages of a
// Noise_NNpsk0_25519_AESGCM_SHA256 handshake, dialer first:
//
//	AUTH ->   psk, e        (the dialer's ephemeral key, sealed under the PSK)
//	<- AUTH   e, ee         (the accepter's; both now hold the transport keys)
//
// The prologue is both HELLO payloads as they were on the wire, the
// dialer's first, so a HELLO altered on the way (a version, a capability
// taken out) makes the first message fail to open: nothing can be
// downgraded. Every byte after the accepter's AUTH, each way, is a record
// (record.go).
const (
	// MinKeyLen is the shortest pre-shared key accepted: 16 bytes (128
	// bits, if they are random).
	MinKeyLen = 16

	noisePrologueLabel = "sockmux-noise-v1"
	noisePSKLabel      = "sockmux-psk-v1"
)

// NoiseSuite is the cipher suite of the channel: X25519, AES-256-GCM and
// SHA-256. AES-GCM and SHA-256 have hardware support on the machines
// sockmux is measured on (AES-NI, SHA-NI); see BENCHMARKS.md for the
// figures against ChaChaPoly and BLAKE2s.
var NoiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256)

// CheckKey refuses a pre-shared key too short to be safe.
func CheckKey(key []byte) error {
	if len(key) < MinKeyLen {
		return fmt.Errorf("%w: %d bytes, the least is %d; make one with: head -c 32 /dev/urandom | base64 (or sockmux keygen --psk)",
			ErrShortKey, len(key), MinKeyLen)
	}
	return nil
}

// NoisePrologue is the prologue both peers give the Noise handshake: a
// label and both HELLO payloads, the dialer's first, the first one's
// length before it.
func NoisePrologue(dialerHello, accepterHello []byte) []byte {
	p := make([]byte, 0, len(noisePrologueLabel)+4+len(dialerHello)+len(accepterHello))
	p = append(p, noisePrologueLabel...)
	p = binary.BigEndian.AppendUint32(p, uint32(len(dialerHello)))
	p = append(p, dialerHello...)
	return append(p, accepterHello...)
}

// NoisePSK is the 32-byte Noise PSK made from a key of any length:
// SHA-256 of a label and the key.
func NoisePSK(key []byte) []byte {
	h := sha256.New()
	h.Write([]byte(noisePSKLabel))
	h.Write(key)
	return h.Sum(nil)
}

// NewNoiseHandshake starts one side's Noise handshake (NNpsk0, NoiseSuite)
// with the key and prologue; the dialer is the initiator.
func NewNoiseHandshake(key []byte, dialer bool, prologue []byte) (*noise.HandshakeState, error) {
	return noise.NewHandshakeState(noise.Config{
		CipherSuite:           NoiseSuite,
		Pattern:               noise.HandshakeNN,
		Initiator:             dialer,
		Prologue:              prologue,
		PresharedKey:          NoisePSK(key),
		PresharedKeyPlacement: 0,
	})
}
