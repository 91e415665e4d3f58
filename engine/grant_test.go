package engine

import "testing"

// sum adds the grants for id in gs.
func sum(gs []Grant, id uint32) int64 {
	var n int64
	for _, g := range gs {
		if g.Stream == id {
			n += g.N
		}
	}
	return n
}

func TestGrantsHugeWindowStaysUnderLimit(t *testing.T) {
	const limit = 1 << 20
	g := NewGrants(limit, 512<<10)
	for id := uint32(1); id <= 7; id += 2 {
		g.Open(id, 1<<30) // the peer announces 1 GiB
		g.Attach(id, 1<<30, 0)
	}
	// Readers read everything they are granted; nothing is ever sent.
	for round := 0; round < 10; round++ {
		for _, gr := range g.Next(nil) {
			if !g.Data(gr.Stream, int(gr.N)) {
				t.Fatalf("DATA within a grant refused")
			}
		}
	}
	if g.Held() > limit+4*IdleAllowance {
		t.Fatalf("held %d, limit %d", g.Held(), limit)
	}
	if len(g.Next(nil)) != 0 {
		t.Fatal("granted more with the link full and nothing sent")
	}
}

func TestGrantsEarlyCreditKept(t *testing.T) {
	g := NewGrants(64<<20, 4<<20)
	g.Open(2, 256<<10)
	if err := g.Credit(2, 1<<20); err != nil { // before the reader is ready
		t.Fatal(err)
	}
	if n := sum(g.Next(nil), 2); n != 0 {
		t.Fatalf("granted %d to a reader that is not ready", n)
	}
	g.Attach(2, 256<<10, 0)
	if n := readGrants(t, g)[2]; n != 256<<10+1<<20 {
		t.Fatalf("granted %d, want the initial window plus the early credit", n)
	}
}

func TestGrantsCreditForUnknownStreamDropped(t *testing.T) {
	g := NewGrants(64<<20, 4<<20)
	if err := g.Credit(9, 100); err != nil {
		t.Fatal(err)
	}
	if len(g.Next(nil)) != 0 {
		t.Fatal("a grant for a stream never opened")
	}
}

func TestGrantsOverflowIsError(t *testing.T) {
	g := NewGrants(64<<20, 4<<20)
	g.Open(1, MaxWindow)
	if err := g.Credit(1, 1); err == nil {
		t.Fatal("a CREDIT past the largest window was taken")
	}
}

// readGrants plays readers that read every grant at once, until no grant
// comes; it returns what each stream read.
func readGrants(t *testing.T, g *Grants) map[uint32]int64 {
	t.Helper()
	got := map[uint32]int64{}
	for {
		gs := g.Next(nil)
		if len(gs) == 0 {
			return got
		}
		for _, gr := range gs {
			if !g.Data(gr.Stream, int(gr.N)) {
				t.Fatalf("DATA within a grant refused")
			}
			got[gr.Stream] += gr.N
		}
	}
}

func TestGrantsWaitingServedInTurnAsQueueDrains(t *testing.T) {
	const limit = 2 << 20
	g := NewGrants(limit, limit)
	g.Attach(1, 1<<30, 0)
	if got := readGrants(t, g); got[1] != limit {
		t.Fatalf("first stream read %d, want the whole link", got[1])
	}
	g.Attach(3, 1<<30, 0)
	g.Attach(5, 1<<30, 0)
	// Stream 1's own allowance takes no room: IdleAllowance of room is
	// left, and each new stream may hold its allowance whatever the link.
	got := readGrants(t, g)
	if got[3] < IdleAllowance || got[5] < IdleAllowance || got[3]+got[5] > 3*IdleAllowance {
		t.Fatalf("new streams on a full link read %v, want their idle allowances and the room left", got)
	}
	// The queue drains: the waiting streams take turns at the room.
	g.Sent(1, limit)
	got = readGrants(t, g)
	if got[3] < MaxGrant || got[5] < MaxGrant {
		t.Fatalf("waiting streams not served in turn once the queue drained: %v", got)
	}
	if g.Held() > limit+3*IdleAllowance {
		t.Fatalf("held %d over the limit %d", g.Held(), limit)
	}
}

func TestGrantsIdleReturnFreesRoom(t *testing.T) {
	const limit = MaxGrant
	g := NewGrants(limit, limit)
	g.Attach(1, 1<<30, 0)
	if n := sum(g.Next(nil), 1); n != limit { // stream 1 holds the whole link, unused
		t.Fatalf("got %d", n)
	}
	g.Attach(3, 1<<30, 0)
	if got := readGrants(t, g); got[3] < IdleAllowance || got[3] > 2*IdleAllowance {
		t.Fatalf("a new stream on a full link read %v, want its idle allowance and the room left", got)
	}
	g.Returned(1, limit-IdleAllowance) // stream 1's socket went idle
	if got := readGrants(t, g); got[3] < MinGrant {
		t.Fatalf("room given back by an idle stream did not reach the waiting one: %v", got)
	}
}

// TestGrantsIdleStreamsDoNotStarveBusyOne: streams holding their idle
// allowance, as many as the link budget divided by it, take no room from
// a busy stream.
func TestGrantsIdleStreamsDoNotStarveBusyOne(t *testing.T) {
	const limit = 1 << 20
	g := NewGrants(limit, limit)
	for id := uint32(3); id < 3+2*4*limit/IdleAllowance; id += 2 { // 4x the limit in allowances
		g.Attach(id, 1<<30, 0)
	}
	// Their sockets are idle: each reader gives back all but its
	// allowance, as a Stream does when its socket has nothing to read.
	for _, gr := range g.Next(nil) {
		g.Returned(gr.Stream, gr.N-IdleAllowance)
	}
	g.Attach(1, 1<<30, 0)
	if got := readGrants(t, g); got[1] < limit {
		t.Fatalf("the busy stream read %d beside idle ones, want the whole link's %d", got[1], limit)
	}
}

func TestGrantsForgetReleasesGrantQueuedStaysUntilSent(t *testing.T) {
	g := NewGrants(1<<20, 1<<20)
	g.Attach(1, 1<<20, 0)
	g.Next(nil)
	g.Data(1, 1000)
	g.Forget(1)
	if g.Held() != 1000 {
		t.Fatalf("held %d after forget, want the 1000 queued", g.Held())
	}
	g.Sent(1, 1000)
	if g.Held() != 0 {
		t.Fatalf("held %d once sent", g.Held())
	}
	if g.Data(1, 10) {
		t.Fatal("DATA of a forgotten stream taken")
	}
}

func TestGrantsDataBeyondCreditRefused(t *testing.T) {
	g := NewGrants(1<<20, 1<<20)
	g.Attach(1, 100, 0)
	g.Next(nil)
	if g.Data(1, 101) {
		t.Fatal("DATA beyond the peer's credit taken")
	}
	if !g.Data(1, 100) {
		t.Fatal("DATA within the credit refused")
	}
}

// FuzzGrants drives Grants with arbitrary events and checks, after each,
// that what the link holds stays within its limit plus each stream's idle
// allowance, and never goes negative.
func FuzzGrants(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{1, 1, 1, 1, 3, 3, 3, 2, 2, 4, 5, 5, 0, 0, 6})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const limit, streams = 1 << 20, 8
		g := NewGrants(limit, 512<<10)
		outstanding := map[uint32]int64{} // what each reader holds
		queued := map[uint32][]int{}      // DATA in the queue, per stream
		dead := map[uint32]bool{}         // stream ids are never used again
		for i, op := range ops {
			id := uint32(op>>4)%streams + 1
			if dead[id] && op%8 != 4 {
				continue
			}
			switch op % 8 {
			case 0:
				g.Open(id, uint32(op)<<12)
			case 1:
				g.Attach(id, 1<<30, 0)
			case 2:
				_ = g.Credit(id, uint32(op)<<14)
			case 3: // the reader reads half of what it holds
				if n := outstanding[id] / 2; n > 0 && g.Data(id, int(n)) {
					outstanding[id] -= n
					queued[id] = append(queued[id], int(n))
				}
			case 4: // a carrier takes the oldest DATA
				if q := queued[id]; len(q) > 0 {
					g.Sent(id, q[0])
					queued[id] = q[1:]
				}
			case 5: // the reader goes idle
				if n := outstanding[id] - IdleAllowance; n > 0 {
					g.Returned(id, n)
					outstanding[id] -= n
				}
			case 6:
				g.Forget(id)
				delete(outstanding, id)
				dead[id] = true
			}
			for _, gr := range g.Next(nil) {
				outstanding[gr.Stream] += gr.N
			}
			if h := g.Held(); h < 0 || h > limit+streams*IdleAllowance {
				t.Fatalf("op %d: held %d, limit %d", i, h, limit)
			}
		}
	})
}
