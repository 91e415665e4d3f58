package engine

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func helloPair(t testing.TB, now time.Time) (d, a *Hello, dp, ap []byte) {
	t.Helper()
	d = &Hello{MinVersion: 1, MaxVersion: 1, Role: RoleDialer, Capabilities: CapPSK, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow}
	a = &Hello{MinVersion: 1, MaxVersion: 1, Role: RoleAccepter, Capabilities: CapPSK, MaxPayload: DefaultMaxPayload, InitialWindow: DefaultWindow}
	AddFreshness(d, now)
	AddFreshness(a, now)
	return d, a, AppendHello(nil, d), AppendHello(nil, a)
}

func TestCheckFreshness(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fresh := func(at time.Time) *Hello {
		h := &Hello{}
		AddFreshness(h, at)
		return h
	}
	cache := NewReplayCache(100)
	replayed := fresh(now)
	if err := CheckFreshness(replayed, now, DefaultMaxSkew, cache); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		h    *Hello
		want error
	}{
		{"fresh", fresh(now.Add(-time.Minute)), nil},
		{"skew just inside", fresh(now.Add(DefaultMaxSkew)), nil},
		{"ahead beyond the limit", fresh(now.Add(DefaultMaxSkew + time.Second)), ErrClockSkew},
		{"behind beyond the limit", fresh(now.Add(-time.Hour)), ErrClockSkew},
		{"replayed", replayed, ErrReplay},
		{"no nonce", &Hello{Extensions: map[uint8][]byte{ExtTime: binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))}}, ErrNoNonce},
		{"no extensions", &Hello{}, ErrNoNonce},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckFreshness(tc.h, now, DefaultMaxSkew, cache)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrAuth) {
				t.Fatalf("CheckFreshness: %v, want %v (and ErrAuth)", err, tc.want)
			}
		})
	}
}

// TestReplayCacheBounded: the cache forgets expired nonces, and stays
// within its size when all are live.
func TestReplayCacheBounded(t *testing.T) {
	c := NewReplayCache(4)
	now := time.Unix(0, 0)
	for i := range 10 {
		if !c.Add([]byte{byte(i)}, now, time.Minute) {
			t.Fatalf("nonce %d reported seen", i)
		}
		if len(c.seen) > 4 {
			t.Fatalf("cache holds %d nonces, limit 4", len(c.seen))
		}
	}
	if c.Add([]byte{9}, now, time.Minute) {
		t.Fatal("a nonce just added was not reported seen")
	}
	if !c.Add([]byte{9}, now.Add(2*time.Minute), time.Minute) {
		t.Fatal("an expired nonce was still reported seen")
	}
}
