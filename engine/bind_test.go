package engine

import (
	"errors"
	"testing"
)

func TestBindRoundTrip(t *testing.T) {
	for _, b := range []Bind{{ID: 1, Addr: "127.0.0.1:8080"}, {ID: 1 << 31, Proto: 1, Addr: "[::1]:0"}} {
		got, err := ParseBind(AppendBind(nil, b))
		if err != nil || got != b {
			t.Errorf("ParseBind(AppendBind(%+v)) = %+v, %v", b, got, err)
		}
	}
	for _, r := range []BindReply{{ID: 7, Code: CodeNormal, Text: "127.0.0.1:40000"}, {ID: 8, Code: CodeBindFailed, Text: "address already in use"}} {
		got, err := ParseBindReply(AppendBindReply(nil, r))
		if err != nil || got != r {
			t.Errorf("ParseBindReply(AppendBindReply(%+v)) = %+v, %v", r, got, err)
		}
	}
}

func TestBindMalformed(t *testing.T) {
	good := AppendBind(nil, Bind{ID: 1, Addr: "127.0.0.1:1"})
	for name, p := range map[string][]byte{
		"empty": nil, "short": good[:6], "cut address": good[:len(good)-1], "extra byte": append(append([]byte(nil), good...), 0),
		"empty address": AppendBind(nil, Bind{ID: 1}), "not UTF-8": AppendBind(nil, Bind{ID: 1, Addr: "\xff:1"}),
	} {
		if _, err := ParseBind(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseBind: %v, want ErrMalformed", name, err)
		}
	}
	if _, err := ParseBindReply([]byte{0, 0, 0, 1, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("short BIND_REPLY: %v", err)
	}
}

func FuzzParseBind(f *testing.F) {
	f.Add(AppendBind(nil, Bind{ID: 3, Addr: "127.0.0.1:80"}))
	f.Add(AppendBindReply(nil, BindReply{ID: 3, Code: CodeBindFailed, Text: "in use"}))
	f.Fuzz(func(t *testing.T, p []byte) {
		if b, err := ParseBind(p); err == nil {
			if string(AppendBind(nil, b)) != string(p) {
				t.Fatalf("BIND %x does not round-trip", p)
			}
		}
		if r, err := ParseBindReply(p); err == nil {
			if _, err := ParseBindReply(AppendBindReply(nil, r)); err != nil {
				t.Fatalf("BIND_REPLY %x does not round-trip: %v", p, err)
			}
		}
	})
}
