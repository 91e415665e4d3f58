package engine

import (
	"bytes"
	"testing"
)

func TestGetPutBuffer(t *testing.T) {
	checkPool(t)
	sizes := []int{0, 1, 100, 512, 513, 4 << 10, 4<<10 + 1, 16 << 10, 16<<10 + 1,
		DefaultMaxPayload, DefaultMaxPayload + HeaderLen, DefaultMaxPayload + HeaderLen + 1, 1 << 20}
	for round := range 3 { // later rounds reuse pooled buffers
		start := PoolOutstanding()
		var held []*Buffer
		for i, n := range sizes {
			b := GetBuffer(n)
			if len(b.B) != n || cap(b.B) < n {
				t.Fatalf("round %d: GetBuffer(%d): len %d cap %d", round, n, len(b.B), cap(b.B))
			}
			if c := classOf(n); c < 3 && cap(b.B) > classSizes[c] {
				t.Fatalf("round %d: GetBuffer(%d): cap %d beyond its class %d", round, n, cap(b.B), classSizes[c])
			}
			for j := range b.B {
				b.B[j] = byte(i)
			}
			held = append(held, b)
			if got := PoolOutstanding(); got != start+int64(len(held)) {
				t.Fatalf("outstanding %d, want %d", got, start+int64(len(held)))
			}
		}
		for i, b := range held {
			// Nobody else wrote into a buffer we held.
			if !bytes.Equal(b.B, bytes.Repeat([]byte{byte(i)}, sizes[i])) {
				t.Fatalf("buffer %d changed while held", i)
			}
			PutBuffer(b)
		}
		if got := PoolOutstanding(); got != start {
			t.Fatalf("outstanding %d after returning everything, want %d", got, start)
		}
	}
}

func TestClassOf(t *testing.T) {
	tests := []struct{ n, class int }{
		{0, 0}, {512, 0}, {513, 1}, {4096, 1}, {4097, 2}, {16384, 2}, {16385, 3},
		{DefaultMaxPayload + HeaderLen, 3}, {DefaultMaxPayload + HeaderLen + 1, 4}, {1 << 30, 4},
	}
	for _, tc := range tests {
		if got := classOf(tc.n); got != tc.class {
			t.Errorf("classOf(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
}

func TestShrinkBuffer(t *testing.T) {
	tests := []struct {
		name   string
		get    int // buffer taken
		keep   int // bytes in it when shrunk
		moves  bool
		maxCap int // the result's cap is at most this (0: unchecked)
	}{
		{"few bytes in a big buffer", DefaultMaxPayload, 10, true, 512},
		{"class boundary moves", 4 << 10, 512, true, 512},
		{"class boundary stays", 4 << 10, 513, false, 4 << 10},
		{"medium in big", DefaultMaxPayload, 5000, true, 16 << 10},
		{"already small", 100, 100, false, 512},
		{"empty", DefaultMaxPayload, 0, true, 512},
		{"full big buffer", DefaultMaxPayload, DefaultMaxPayload, false, 0},
		{"oversize", 1 << 20, 1 << 20, false, 0},
		{"oversize nearly empty", 1 << 20, 3, true, 512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPool(t)
			b := GetBuffer(tc.get)
			for i := range b.B {
				b.B[i] = byte(i * 7)
			}
			b.B = b.B[:tc.keep]
			want := append([]byte(nil), b.B...)
			before := PoolOutstanding()
			s := ShrinkBuffer(b)
			if PoolOutstanding() != before {
				t.Fatalf("ShrinkBuffer changed the outstanding count by %d", PoolOutstanding()-before)
			}
			if (s != b) != tc.moves {
				t.Fatalf("moved %v, want %v (cap %d -> %d)", s != b, tc.moves, cap(b.B), cap(s.B))
			}
			if !bytes.Equal(s.B, want) {
				t.Fatal("contents changed")
			}
			if tc.maxCap > 0 && cap(s.B) > tc.maxCap {
				t.Fatalf("cap %d after shrinking, want at most %d", cap(s.B), tc.maxCap)
			}
			PutBuffer(s)
		})
	}
}

// TestPoolOutstandingFrames: frames built by the constructors and released
// leave the count where it was.
func TestPoolOutstandingFrames(t *testing.T) {
	checkPool(t)
	start := PoolOutstanding()
	frames := []*Frame{
		NewHello(v1Hello(RoleDialer)),
		NewOpen(1, TargetDial, "h:1", []byte("x")),
		NewReason(TypeRst, 1, CodeCancelled, "gone"),
		NewCredit(1, 10),
		NewPing(TypePing, 1),
		NewEmpty(TypeFin, 1),
	}
	if got := PoolOutstanding() - start; got != 5 {
		t.Fatalf("%d buffers taken for 5 payloads", got)
	}
	release(frames)
	release(frames) // Release twice is harmless
	if PoolOutstanding() != start {
		t.Fatalf("outstanding %d, want %d", PoolOutstanding(), start)
	}
}

// TestPoolKeepsItsClassAfterCalibration: buffers that come back holding a
// few bytes (a short read, moved out by ShrinkBuffer) stay pooled after
// bytebufferpool calibrates on them, instead of being dropped and made
// afresh for each read.
func TestPoolKeepsItsClassAfterCalibration(t *testing.T) {
	cycle := func() {
		b := GetBuffer(DefaultMaxPayload)
		b.B = b.B[:64]
		PutBuffer(b)
	}
	for range 100_000 { // past the pool's calibration threshold, twice
		cycle()
	}
	// A buffer put back is the one the next get returns, mostly: a GC
	// may empty the pool, and under -race sync.Pool drops a quarter of
	// what it is given. Dropping its own class, it reused none.
	var last *Buffer
	reused := 0
	for range 100 {
		b := GetBuffer(DefaultMaxPayload)
		if b == last {
			reused++
		}
		last = b
		b.B = b.B[:64]
		PutBuffer(b)
	}
	if reused < 50 {
		t.Fatalf("%d of 100 gets reused the buffer just put back: the pool drops its own class", reused)
	}
}
