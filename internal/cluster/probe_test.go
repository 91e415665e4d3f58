package cluster

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeProbe: a probe document another member sent is read back as
// sent, and one that breaks a limit or is not of the kind asked for is
// an ErrMalformed, never a panic.
func TestDecodeProbe(t *testing.T) {
	me := probeMember{ID: "id1", Host: "10.0.0.1", Port: 7946, Kinds: []string{directoryKind}, Link: "10.0.0.1:7947"}
	b := encodeProbe(&probeDoc{Op: opLive, Members: []probeMember{me, {ID: "id2", Host: "10.0.0.2", Port: 7946}},
		Counted: []string{"10.0.0.1:7946", "10.0.0.2:7946"}, Expelled: "id3"}).GetValue()
	d, err := decodeProbe(b, opLive)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Members) != 2 || d.Members[0].Link != me.Link || d.Members[0].address() != "10.0.0.1:7946" ||
		len(d.Counted) != 2 || d.Counted[1] != "10.0.0.2:7946" || d.Expelled != "id3" {
		t.Errorf("decoded %+v", d)
	}
	long := strings.Repeat("x", maxField+1)
	for _, tc := range []struct{ name, doc, op string }{
		{"another kind", string(b), opProbe},
		{"no members", `{"op":"probe","members":[]}`, opProbe},
		{"unknown field", `{"op":"probe","members":[{"id":"a","host":"h","port":1}],"x":1}`, opProbe},
		{"no id", `{"op":"probe","members":[{"host":"h","port":1}]}`, opProbe},
		{"port 0", `{"op":"probe","members":[{"id":"a","host":"h","port":0}]}`, opProbe},
		{"port too high", `{"op":"probe","members":[{"id":"a","host":"h","port":70000}]}`, opProbe},
		{"long link", `{"op":"probe","members":[{"id":"a","host":"h","port":1,"link":"` + long + `"}]}`, opProbe},
		{"empty kind", `{"op":"probe","members":[{"id":"a","host":"h","port":1,"kinds":[""]}]}`, opProbe},
		{"empty counted address", `{"op":"probe","members":[{"id":"a","host":"h","port":1}],"counted":[""]}`, opProbe},
		{"long counted address", `{"op":"probe","members":[{"id":"a","host":"h","port":1}],"counted":["` + long + `"]}`, opProbe},
		{"long expelled id", `{"op":"probe","members":[{"id":"a","host":"h","port":1}],"expelled":"` + long + `"}`, opProbe},
		{"trailing data", `{"op":"probe","members":[{"id":"a","host":"h","port":1}]} {}`, opProbe},
		{"not JSON", "\x00\x01", opProbe},
	} {
		if _, err := decodeProbe([]byte(tc.doc), tc.op); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
}
