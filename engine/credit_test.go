package engine

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestRecvWindowReceive(t *testing.T) {
	tests := []struct {
		name    string
		size    uint32
		receive []int // in order; the last may fail
		want    error
		avail   uint32 // after
	}{
		{"nothing", 1024, nil, nil, 1024},
		{"zero bytes", 1024, []int{0}, nil, 1024},
		{"part", 1024, []int{100, 200}, nil, 724},
		{"all of it", 1024, []int{1000, 24}, nil, 0},
		{"one byte over", 1024, []int{1000, 25}, ErrFlowControl, 24},
		{"over at once", 1024, []int{1025}, ErrFlowControl, 1024},
		{"empty window", 1024, []int{1024, 1}, ErrFlowControl, 0},
		{"negative", 1024, []int{-1}, ErrFlowControl, 1024},
		{"huge", MaxWindow, []int{math.MaxInt}, ErrFlowControl, MaxWindow},
		{"max window", MaxWindow, []int{MaxWindow}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewRecvWindow(tc.size, 0)
			if w.Size() != tc.size || w.Avail() != tc.size {
				t.Fatalf("new window: size %d avail %d", w.Size(), w.Avail())
			}
			var err error
			for i, n := range tc.receive {
				err = w.Receive(n)
				if err != nil && i != len(tc.receive)-1 {
					t.Fatalf("Receive(%d): %v", n, err)
				}
			}
			wantErr(t, "Receive", err, tc.want)
			if err != nil {
				wantErr(t, "Receive", err, ErrProtocol)
			}
			if w.Avail() != tc.avail {
				t.Fatalf("avail %d, want %d (a refused Receive takes nothing)", w.Avail(), tc.avail)
			}
		})
	}
}

// TestRecvWindowConsumed checks that credit is granted only once a quarter
// of the window is due, and then all that is due at once.
func TestRecvWindowConsumed(t *testing.T) {
	type step struct {
		consumed int
		grant    uint32
	}
	tests := []struct {
		name  string
		size  uint32
		steps []step
	}{
		{"below a quarter", 1024, []step{{100, 0}, {155, 0}}},
		{"reaching a quarter", 1024, []step{{100, 0}, {155, 0}, {1, 256}}},
		{"one big write", 1024, []step{{1000, 1000}}},
		{"exactly a quarter", 1024, []step{{256, 256}, {255, 0}, {1, 256}}},
		{"default window", DefaultWindow, []step{{DefaultWindow/4 - 1, 0}, {1, DefaultWindow / 4}, {DefaultWindow / 2, DefaultWindow / 2}}},
		{"zero", 1024, []step{{0, 0}, {0, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewRecvWindow(tc.size, 0)
			total := 0
			for _, s := range tc.steps {
				total += s.consumed
			}
			wantErr(t, "Receive", w.Receive(total), nil)
			granted := uint32(0)
			for i, s := range tc.steps {
				if got, _ := w.Consumed(s.consumed, 0, time.Time{}, 0); got != s.grant {
					t.Fatalf("step %d: Consumed(%d) = %d, want %d", i, s.consumed, got, s.grant)
				}
				granted += s.grant
				if w.Avail() != tc.size-uint32(total)+granted {
					t.Fatalf("step %d: avail %d, want %d", i, w.Avail(), tc.size-uint32(total)+granted)
				}
			}
		})
	}
}

func TestSendWindow(t *testing.T) {
	w := NewSendWindow(1024)
	if w.Avail() != 1024 {
		t.Fatalf("avail %d", w.Avail())
	}
	takes := []struct {
		n    int
		ok   bool
		left int64
	}{
		{0, true, 1024},
		{1000, true, 24},
		{25, false, 24},
		{24, true, 0},
		{1, false, 0},
	}
	for _, tc := range takes {
		if ok := w.Take(tc.n); ok != tc.ok || w.Avail() != tc.left {
			t.Fatalf("Take(%d) = %v leaving %d, want %v leaving %d", tc.n, ok, w.Avail(), tc.ok, tc.left)
		}
	}
	wantErr(t, "Add", w.Add(256), nil)
	if w.Avail() != 256 {
		t.Fatalf("avail %d after Add", w.Avail())
	}
}

func TestSendWindowOverflow(t *testing.T) {
	tests := []struct {
		name  string
		start uint32
		add   []uint32
		want  error
		avail int64
	}{
		{"to the max", 1024, []uint32{MaxWindow - 1024}, nil, MaxWindow},
		{"one past the max", 1024, []uint32{MaxWindow - 1023}, ErrFlowControl, 1024},
		{"max on max", MaxWindow, []uint32{1}, ErrFlowControl, MaxWindow},
		{"u32 max", 0, []uint32{math.MaxUint32}, ErrFlowControl, 0},
		{"repeated adds", 1 << 29, []uint32{1 << 28, 1 << 28, 1}, ErrFlowControl, MaxWindow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewSendWindow(tc.start)
			var err error
			for _, n := range tc.add {
				if err = w.Add(n); err != nil {
					break
				}
			}
			wantErr(t, "Add", err, tc.want)
			if w.Avail() != tc.avail {
				t.Fatalf("avail %d, want %d (a refused Add adds nothing)", w.Avail(), tc.avail)
			}
		})
	}
}

// TestWindowsTogether runs a sender and a receiver against each other: the
// sender never exceeds the receiver's window, the receiver never holds more
// than the window, and credit keeps the transfer moving.
func TestWindowsTogether(t *testing.T) {
	const size, total, chunk = 4096, 1 << 20, 1500
	recv := NewRecvWindow(size, 0)
	send := NewSendWindow(size)
	held, sent, delivered := 0, 0, 0
	for delivered < total {
		n := min(chunk, total-sent, int(send.Avail()))
		if n > 0 && send.Take(n) {
			wantErr(t, "Receive", recv.Receive(n), nil)
			sent += n
			held += n
		}
		if held > size {
			t.Fatalf("receiver holds %d, window %d", held, size)
		}
		// The local socket takes up to 1000 bytes at a time.
		c := min(held, 1000)
		if c == 0 && n == 0 {
			t.Fatalf("stalled at %d of %d: sender has %d, receiver holds nothing", delivered, total, send.Avail())
		}
		held -= c
		delivered += c
		if grant, _ := recv.Consumed(c, 0, time.Time{}, 0); grant > 0 {
			wantErr(t, "Add", send.Add(grant), nil)
		}
		if int64(recv.Avail()) != send.Avail() {
			t.Fatalf("windows disagree: receiver granted %d, sender holds %d", recv.Avail(), send.Avail())
		}
	}
}

// TestRecvWindowGrowth: the window doubles only while it, not the local
// reader, limits the stream, and never past its maximum.
func TestRecvWindowGrowth(t *testing.T) {
	const size = 64 << 10
	cases := []struct {
		name     string
		max      uint32
		received int // how much of the window the peer used before the grant
		queued   int // bytes waiting to be written locally
		wantGrow uint32
	}{
		{"starved sender, idle queue", 1 << 20, size, 0, size},
		{"starved sender, queue a quarter full", 1 << 20, size, size / 4, size},
		{"sender still has credit", 1 << 20, size / 2, 0, 0},
		{"reader behind", 1 << 20, size, size / 2, 0},
		{"at its maximum", size, size, 0, 0},
		{"near its maximum", size + size/2, size, 0, size / 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := NewRecvWindow(size, tc.max)
			if err := w.Receive(tc.received); err != nil {
				t.Fatal(err)
			}
			credit, grow := w.Consumed(size/4, tc.queued, time.Time{}, 0)
			if credit != size/4 {
				t.Fatalf("credit %d, want %d", credit, size/4)
			}
			if grow != tc.wantGrow {
				t.Fatalf("grow %d, want %d", grow, tc.wantGrow)
			}
			extra := w.Grow(grow)
			if extra != grow || w.Size() != size+grow {
				t.Fatalf("Grow(%d) gave %d, size %d", grow, extra, w.Size())
			}
			// The peer may now send what it had left, plus the credit,
			// plus the growth, and not a byte more.
			want := uint32(size-tc.received) + credit + grow
			if w.Avail() != want {
				t.Fatalf("peer credit %d, want %d", w.Avail(), want)
			}
			if err := w.Receive(int(want) + 1); !errors.Is(err, ErrFlowControl) {
				t.Fatalf("overrun by one byte: %v, want ErrFlowControl", err)
			}
		})
	}
}

// TestRecvWindowGrowClamps: Grow never passes the maximum, whatever it is
// asked.
func TestRecvWindowGrowClamps(t *testing.T) {
	w := NewRecvWindow(1000, 1500)
	if got := w.Grow(10_000); got != 500 || w.Size() != 1500 {
		t.Fatalf("Grow = %d, size %d; want 500, 1500", got, w.Size())
	}
	if got := w.Grow(1); got != 0 {
		t.Fatalf("Grow at the maximum = %d, want 0", got)
	}
}

// TestRecvWindowGrowsOnLongPath: on a long path the whole window arrives in
// one burst before the first grant reaches the sender, so at each grant
// the peer still seems to hold credit; the window must grow all the same,
// and only while the reader keeps up.
func TestRecvWindowGrowsOnLongPath(t *testing.T) {
	const size = 64 << 10
	for _, tc := range []struct {
		name     string
		queued   int
		wantSize uint32
	}{{"reader keeps up", 0, 2 * size}, {"reader behind", size, size}} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewRecvWindow(size, 1<<20)
			if err := w.Receive(size); err != nil { // the burst: the whole window
				t.Fatal(err)
			}
			var grown uint32
			for range 4 { // the reader writes it out a quarter at a time
				if c, g := w.Consumed(size/4, tc.queued, time.Time{}, 0); c > 0 {
					grown += w.Grow(g)
				}
			}
			if w.Size() != tc.wantSize {
				t.Fatalf("window %d after a starved round trip, want %d (grew %d)", w.Size(), tc.wantSize, grown)
			}
		})
	}
}

// TestRecvWindowGrowsByRoundTrip: a whole window consumed within two round
// trips doubles it, though the peer never looked starved (its credit was on
// the way); consumed slower, or with the reader behind, it does not.
func TestRecvWindowGrowsByRoundTrip(t *testing.T) {
	const size = 64 << 10
	t0 := time.Unix(1000, 0)
	rtt := 50 * time.Millisecond
	for _, tc := range []struct {
		name     string
		took     time.Duration // to consume the whole window
		queued   int
		wantSize uint32
	}{
		{"within two round trips", 60 * time.Millisecond, 0, 2 * size},
		{"slower than two round trips", 150 * time.Millisecond, 0, size},
		{"reader behind", 60 * time.Millisecond, size, size},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewRecvWindow(size, 1<<20)
			for i := range 4 {
				// Each quarter arrives while the peer still holds credit.
				if err := w.Receive(size / 4); err != nil {
					t.Fatal(err)
				}
				at := t0.Add(time.Duration(i) * tc.took / 3)
				if c, g := w.Consumed(size/4, tc.queued, at, rtt); c > 0 {
					w.Grow(g)
				}
			}
			if w.Size() != tc.wantSize {
				t.Fatalf("window %d, want %d", w.Size(), tc.wantSize)
			}
		})
	}
}
