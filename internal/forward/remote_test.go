package forward

import (
	"errors"
	"testing"
)

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
