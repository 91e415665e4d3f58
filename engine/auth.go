package engine

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Authentication by pre-shared key. Every HELLO carries a fresh nonce and
// the sender's clock (extensions ExtNonce and ExtTime); a peer with a key
// sets CapPSK. When both have one, AUTH frames carry a Noise handshake
// that proves the key and keys the channel (noise.go).
//
// The nonce and the clock add no secrecy and no integrity to what Noise
// gives (each handshake mixes two fresh ephemeral keys, so a recorded
// handshake replayed never yields a channel the attacker can use). They
// stay as a cheap, named refusal: a replayed HELLO is turned away before
// any Diffie-Hellman is done and before it holds a carrier open until the
// handshake times out, and a peer whose clock is far off is told so.
const (
	// CapPSK is the capability bit of a peer that has a pre-shared key and
	// requires the other to prove it.
	CapPSK uint32 = 1 << 0

	// ExtNonce is the HELLO extension holding 32 random bytes.
	ExtNonce uint8 = 1
	// ExtTime is the HELLO extension holding the sender's clock, Unix
	// nanoseconds, u64 big-endian.
	ExtTime uint8 = 2

	// NonceLen is the length of a HELLO nonce.
	NonceLen = 32
	// AuthLen is the length of an AUTH payload: a Noise NNpsk0 message
	// with no payload, an X25519 key and a tag.
	AuthLen = 32 + RecordTagLen
	// DefaultMaxSkew is the clock difference tolerated between peers: 300 s,
	// as the seed system had.
	DefaultMaxSkew = 300 * time.Second
)

// Authentication errors; each matches ErrAuth.
var (
	ErrAuth = errors.New("authentication failed")
	// ErrKeyMismatch is an AUTH whose Noise message does not open: the
	// peers' keys differ, or a HELLO was altered on the way.
	ErrKeyMismatch = authErr("pre-shared keys do not match")
	// ErrNoPeerKey is a peer without a key when this side requires one.
	ErrNoPeerKey = authErr("peer has no pre-shared key; this side requires one")
	// ErrNoLocalKey is a peer that requires a key this side does not have.
	ErrNoLocalKey = authErr("peer requires a pre-shared key; none is configured here")
	// ErrReplay is a HELLO whose nonce was seen before.
	ErrReplay = authErr("replayed HELLO (nonce seen before)")
	// ErrClockSkew is a HELLO whose clock is too far from ours.
	ErrClockSkew = authErr("clock skew too large")
	// ErrNoNonce is a HELLO without the nonce and clock authentication needs.
	ErrNoNonce = authErr("HELLO lacks nonce or clock")
)

type authError struct{ msg string }

func authErr(msg string) error { return &authError{msg} }

func (e *authError) Error() string        { return e.msg }
func (e *authError) Is(target error) bool { return target == ErrAuth }

// AddFreshness puts a fresh nonce and the clock now into h's extensions.
func AddFreshness(h *Hello, now time.Time) {
	if h.Extensions == nil {
		h.Extensions = make(map[uint8][]byte)
	}
	n := make([]byte, NonceLen)
	if _, err := rand.Read(n); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the OS has no randomness: nothing is safe
	}
	h.Extensions[ExtNonce] = n
	h.Extensions[ExtTime] = binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))
}

// CheckFreshness checks the peer's HELLO clock against now and its nonce
// against the replay cache (which then remembers it).
func CheckFreshness(h *Hello, now time.Time, maxSkew time.Duration, seen *ReplayCache) error {
	nonce, ts := h.Extensions[ExtNonce], h.Extensions[ExtTime]
	if len(nonce) != NonceLen || len(ts) != 8 {
		return ErrNoNonce
	}
	peer := time.Unix(0, int64(binary.BigEndian.Uint64(ts)))
	if skew := now.Sub(peer).Abs(); skew > maxSkew {
		return fmt.Errorf("%w: peer's clock is %v away from ours (limit %v)", ErrClockSkew, skew.Round(time.Second), maxSkew)
	}
	if seen != nil && !seen.Add(nonce, now, 2*maxSkew) {
		return ErrReplay
	}
	return nil
}

// ReplayCache remembers HELLO nonces for as long as a HELLO with them could
// pass the clock check, so a replayed HELLO is refused by name. It is safe
// for concurrent use and bounded.
type ReplayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time // nonce -> when it may be forgotten
	max  int
}

// NewReplayCache returns a cache of at most max nonces.
func NewReplayCache(max int) *ReplayCache {
	return &ReplayCache{seen: make(map[string]time.Time), max: max}
}

// Add records nonce and reports whether it was new.
func (c *ReplayCache) Add(nonce []byte, now time.Time, ttl time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[string(nonce)]; ok && now.Before(exp) {
		return false
	}
	if len(c.seen) >= c.max {
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max { // all live: forget one at random
			for k := range c.seen {
				delete(c.seen, k)
				break
			}
		}
	}
	c.seen[string(nonce)] = now.Add(ttl)
	return true
}
