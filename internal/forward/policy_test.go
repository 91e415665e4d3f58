package forward

import (
	"errors"
	"testing"
)

func TestTargetPolicy(t *testing.T) {
	p := MustTargetPolicy("10.0.0.0/8:*", "*.example.com:443", "db:5432", "[fd00::/8]:22", "192.168.1.5:80", "[::1]:8080")
	cases := []struct {
		target string
		want   bool
	}{
		{"10.1.2.3:9999", true},
		{"11.1.2.3:9999", false},
		{"www.example.com:443", true},
		{"WWW.Example.COM:443", true},
		{"www.example.com:80", false},
		{"example.com:443", false},
		{"db:5432", true},
		{"db:5433", false},
		{"[fd12::1]:22", true},
		{"[fe80::1]:22", false},
		{"192.168.1.5:80", true},
		{"192.168.1.6:80", false},
		{"[::1]:8080", true},
		{"[::ffff:10.0.0.1]:1", true}, // an IPv4-mapped address is the IPv4 address
		{"not-a-target", false},
		{"10.0.0.1:0", false},
	}
	for _, tc := range cases {
		if got := p.Allows(tc.target); got != tc.want {
			t.Errorf("Allows(%q) = %v, want %v", tc.target, got, tc.want)
		}
	}
	for _, tc := range []struct {
		target string
		want   bool
	}{
		{"127.0.0.1:22", true}, {"127.9.9.9:1", true}, {"[::1]:80", true}, {"localhost:6379", true},
		{"10.0.0.1:22", false}, {"example.com:80", false}, {"localhost.evil.com:80", false},
	} {
		if got := LoopbackTargets.Allows(tc.target); got != tc.want {
			t.Errorf("LoopbackTargets.Allows(%q) = %v, want %v", tc.target, got, tc.want)
		}
	}
	if !AnyTarget.Allows("anything.at.all:1") {
		t.Error("AnyTarget refused a target")
	}
}

func TestTargetPatternErrors(t *testing.T) {
	for _, s := range []string{"", "host", "host:", "host:99999", ":80", "10.0.0.0/33:*", "::1:80", "[::1:80", "host:http"} {
		if _, err := ParseTargetPolicy(s); !errors.Is(err, ErrBadPattern) {
			t.Errorf("ParseTargetPolicy(%q): %v, want ErrBadPattern", s, err)
		}
	}
}

func FuzzTargetPolicy(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8:*", "*.example.com:443", "[fd00::/8]:22", "*:*", "a*b*c:1"} {
		f.Add(s, "10.1.1.1:443")
	}
	f.Fuzz(func(t *testing.T, pattern, target string) {
		p, err := ParseTargetPolicy(pattern)
		if err != nil {
			return
		}
		_ = p.Allows(target)
	})
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"*c", "abc", true},
		{"a*c", "abc", true}, {"a*c", "ab", false}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxcyyb", false},
		{"abc", "abc", true}, {"abc", "abd", false}, {"", "", true}, {"", "a", false},
		{"a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	}
	for _, tc := range cases {
		if got := glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// TestPolicyAlso: a policy joined by Also allows only what both allow,
// and a refusal names the one that refused.
func TestPolicyAlso(t *testing.T) {
	side := MustTargetPolicy("10.0.0.0/8:*", "db:5432")
	key := MustTargetPolicy("10.1.0.0/16:22", "db:*")
	both := side.Also(key, "permit-target of its key")
	for target, want := range map[string]string{"10.1.2.3:22": "", "db:5432": "", "10.2.0.1:22": "permit-target of its key", "10.1.2.3:80": "permit-target of its key", "db:22": "-", "1.1.1.1:22": "-"} {
		label, refused := both.Refuser(target)
		switch {
		case want == "" && (refused || !both.Allows(target)):
			t.Errorf("%s refused (%q), want allowed", target, label)
		case want == "-" && (!refused || label != "" || both.Allows(target)):
			t.Errorf("%s: refused %v by %q, want refused by the side's own patterns", target, refused, label)
		case want != "" && want != "-" && (!refused || label != want || both.Allows(target)):
			t.Errorf("%s: refused %v by %q, want by %q", target, refused, label, want)
		}
	}
	if side.Also(key, "x").Also(MustTargetPolicy("db:5432"), "y").Allows("10.1.2.3:22") {
		t.Error("a third policy joined did not apply")
	}
	if !side.Allows("10.2.0.1:22") {
		t.Error("Also changed the policy it was called on")
	}
}
