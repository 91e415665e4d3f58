package engine

import "testing"

func TestSilence(t *testing.T) {
	var s Silence
	for i := range SilentTicks - 1 {
		if s.Tick() {
			t.Fatalf("silent after %d quiet ticks", i+1)
		}
	}
	s.Heard() // a frame, any frame: the interval it came in is not quiet
	for i := range SilentTicks {
		if s.Tick() {
			t.Fatalf("silent %d ticks after a frame", i+1)
		}
	}
	if !s.Tick() {
		t.Fatalf("not silent after %d quiet ticks", SilentTicks)
	}
	if !s.Tick() {
		t.Fatal("silent carrier came back without a frame")
	}
	for _, tc := range []struct {
		seq, ending bool
		want        SilentVerdict
	}{{true, false, DropCarrier}, {true, true, DropLink}, {false, false, DropLink}, {false, true, DropLink}} {
		if got := OnSilent(tc.seq, tc.ending); got != tc.want {
			t.Errorf("OnSilent(seq %v, ending %v) = %v, want %v", tc.seq, tc.ending, got, tc.want)
		}
	}
}
