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

func TestParseRemote(t *testing.T) {
	cases := []struct {
		spec      string
		bind, tgt string
		wantErr   bool
	}{
		{"8080:web:80", "127.0.0.1:8080", "web:80", false},
		{"0.0.0.0:8023:telnet-host:23", "0.0.0.0:8023", "telnet-host:23", false},
		{"1080:socks", "127.0.0.1:1080", TargetSOCKS, false},
		{"*:1080:socks", "0.0.0.0:1080", TargetSOCKS, false},
		{"[::1]:1080:socks", "[::1]:1080", TargetSOCKS, false},
		{"x:socks", "", "", true},
		{"socks", "", "", true},
		{"8080:web", "", "", true},
	}
	for _, tc := range cases {
		f, err := ParseRemote(tc.spec)
		if tc.wantErr {
			if !errors.Is(err, ErrBadForward) {
				t.Errorf("ParseRemote(%q): %v, want ErrBadForward", tc.spec, err)
			}
			continue
		}
		if err != nil || f.Bind != tc.bind || f.Target != tc.tgt {
			t.Errorf("ParseRemote(%q) = %+v, %v; want %s -> %s", tc.spec, f, err, tc.bind, tc.tgt)
		}
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

func FuzzParseRemote(f *testing.F) {
	for _, s := range []string{"8080:web:80", "1080:socks", "[::1]:1:socks", "*:1:h:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if fw, err := ParseRemote(s); err == nil && fw.Bind == "" {
			t.Fatalf("ParseRemote(%q) gave no bind address", s)
		}
	})
}
