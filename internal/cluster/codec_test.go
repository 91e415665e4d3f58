package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeRoundTrip(t *testing.T) {
	in := &message{Op: opSync, Hub: "10.0.0.1:7946", Version: 7, Entries: []Entry{
		{Bind: "tcp/*:8080", Pool: "web", Hub: "10.0.0.1:7946", Link: "10.0.0.1:7000", Members: 3},
	}}
	out, err := decode(encode(in).GetValue())
	if err != nil {
		t.Fatal(err)
	}
	if out.Op != in.Op || out.Hub != in.Hub || out.Version != in.Version || len(out.Entries) != 1 || out.Entries[0] != in.Entries[0] {
		t.Errorf("decoded %+v, want %+v", out, in)
	}
}

func TestDecodeRefuses(t *testing.T) {
	long := strings.Repeat("x", maxField+1)
	many := `{"op":"entries","entries":[` + strings.Repeat(`{"bind":"b","hub":"h"},`, maxEntries) + `{"bind":"b","hub":"h"}]}`
	for _, tc := range []struct{ name, in string }{
		{"not json", "\x00\x01"},
		{"unknown op", `{"op":"drop"}`},
		{"unknown field", `{"op":"list","evil":1}`},
		{"two documents", `{"op":"list"}{"op":"list"}`},
		{"sync without hub", `{"op":"sync","version":1}`},
		{"sync without version", `{"op":"sync","hub":"a:1"}`},
		{"entry of a hub without version", `{"op":"entries","entries":[{"bind":"tcp/*:1","hub":"a:1"}],"versions":{"b:1":1}}`},
		{"version for no hub", `{"op":"entries","versions":{"":1}}`},
		{"sync of another hub", `{"op":"sync","hub":"a:1","version":1,"entries":[{"bind":"tcp/*:1","hub":"b:1"}]}`},
		{"entry without bind", `{"op":"entries","entries":[{"hub":"a:1"}],"versions":{"a:1":1}}`},
		{"entry without hub", `{"op":"entries","entries":[{"bind":"tcp/*:1"}]}`},
		{"long bind", `{"op":"entries","entries":[{"bind":"` + long + `","hub":"a:1"}]}`},
		{"negative members", `{"op":"entries","entries":[{"bind":"b","hub":"a:1","members":-1}]}`},
		{"too many entries", many},
		{"too big", `{"op":"list","hub":"` + strings.Repeat("x", maxMessage) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decode([]byte(tc.in)); !errors.Is(err, ErrMalformed) {
				t.Errorf("decode: %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(&message{Op: opList}).GetValue())
	f.Add(encode(&message{Op: opSync, Hub: "a:1", Version: 1, Entries: []Entry{{Bind: "tcp/*:1", Hub: "a:1"}}}).GetValue())
	f.Add([]byte(`{"op":"entries","entries":[{"bind":"b","hub":"h","members":1}],"versions":{"h":3}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// What decodes encodes and decodes to the same.
		again, err := decode(encode(m).GetValue())
		if err != nil || again.Op != m.Op || len(again.Entries) != len(m.Entries) {
			t.Fatalf("re-decoding %+v: %+v, %v", m, again, err)
		}
	})
}
