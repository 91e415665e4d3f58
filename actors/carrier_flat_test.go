package actors

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"testing"
)

// writesConn records each Write it is given, failing from the failAt-th
// on (0: never).
type writesConn struct {
	net.Conn
	writes [][]byte // copies: the writer reuses its flat buffer
	first  []*byte  // where each write's bytes were
	failAt int
}

var errWriteRefused = errors.New("write refused")

func (c *writesConn) Write(p []byte) (int, error) {
	if c.failAt > 0 && len(c.writes)+1 >= c.failAt {
		return 0, errWriteRefused
	}
	c.writes = append(c.writes, append([]byte(nil), p...))
	c.first = append(c.first, &p[0])
	return len(p), nil
}

// TestWriteFlat: a carrier without writev gets the batch's bytes in order,
// the small pieces together and, when it may take a batch in several
// writes, each large payload in a write of its own, from the frame's own
// buffer (not copied); a TLS carrier (split off) gets one write.
func TestWriteFlat(t *testing.T) {
	hdr := func(b byte) []byte { return bytes.Repeat([]byte{b}, 9) }
	big := bytes.Repeat([]byte("B"), directWriteMin)
	small := []byte("small payload")
	bufs := net.Buffers{hdr(1), small, hdr(2), big, hdr(3), small, hdr(4), big}
	want := bytes.Join(bufs, nil)
	tests := []struct {
		name   string
		split  bool
		writes []int // the length of each write
		direct []int // writes that must be big itself
	}{
		{"split", true, []int{9 + len(small) + 9, len(big), 9 + len(small) + 9, len(big)}, []int{1, 3}},
		{"one record", false, []int{len(want)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &writesConn{}
			in := append(net.Buffers(nil), bufs...)
			if _, err := writeFlat(c, in, nil, tc.split); err != nil {
				t.Fatal(err)
			}
			if got := bytes.Join(c.writes, nil); !bytes.Equal(got, want) {
				t.Fatalf("wrote %d bytes that differ from the %d of the batch", len(got), len(want))
			}
			var lens []int
			for _, w := range c.writes {
				lens = append(lens, len(w))
			}
			if !slices.Equal(lens, tc.writes) {
				t.Fatalf("writes of %v bytes, want %v", lens, tc.writes)
			}
			for _, i := range tc.direct {
				if c.first[i] != &big[0] {
					t.Errorf("write %d is a copy of the payload, want the payload's own buffer", i)
				}
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		c := &writesConn{failAt: 2}
		if _, err := writeFlat(c, append(net.Buffers(nil), bufs...), nil, true); !errors.Is(err, errWriteRefused) {
			t.Fatalf("err = %v, want the carrier's", err)
		}
		if len(c.writes) != 1 {
			t.Fatalf("%d writes after the failed one's predecessor, want 1", len(c.writes))
		}
	})
}
