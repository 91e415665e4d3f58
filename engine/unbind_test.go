package engine

import (
	"errors"
	"testing"
)

func TestUnbind(t *testing.T) {
	f := NewUnbind(7)
	defer f.Release()
	if f.Type != TypeUnbind || f.Type.String() != "UNBIND" || f.Stream != 0 {
		t.Fatalf("frame %v on stream %d", f.Type, f.Stream)
	}
	if id, err := ParseUnbind(f.Bytes()); err != nil || id != 7 {
		t.Fatalf("ParseUnbind = %d, %v", id, err)
	}
	for _, p := range [][]byte{nil, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		if _, err := ParseUnbind(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseUnbind(%x) = %v, want ErrMalformed", p, err)
		}
	}
	if isReply(f) {
		t.Error("an UNBIND counted as a reply: it is asked, not answered")
	}
}

func FuzzParseUnbind(f *testing.F) {
	f.Add(AppendUnbind(nil, 3))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		if id, err := ParseUnbind(p); err == nil && string(AppendUnbind(nil, id)) != string(p) {
			t.Fatalf("UNBIND %x does not round-trip", p)
		}
	})
}
