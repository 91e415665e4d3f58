package engine

import (
	"errors"
	"strings"
	"testing"
)

func TestBindRoundTrip(t *testing.T) {
	for _, b := range []Bind{{ID: 1, Addr: "127.0.0.1:8080"}, {ID: 1 << 31, Proto: 1, Addr: "[::1]:0"}, {ID: 2, Addr: "0.0.0.0:8080", Pool: "web-1.a_b"}} {
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
		"pool cut":       AppendBind(nil, Bind{ID: 1, Addr: "127.0.0.1:1", Pool: "web"})[:len(good)+3],
		"pool bad chars": AppendBind(nil, Bind{ID: 1, Addr: "127.0.0.1:1", Pool: "we b"}),
		"pool too long":  AppendBind(nil, Bind{ID: 1, Addr: "127.0.0.1:1", Pool: strings.Repeat("p", MaxPoolName+1)}),
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
	f.Add(AppendBind(nil, Bind{ID: 3, Addr: "127.0.0.1:80", Pool: "web"}))
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

func TestPeerBind(t *testing.T) {
	only := func(addr string) Policy { return PolicyFunc(func(a string) bool { return a == addr }) }
	bound := func(ids ...uint32) func(uint32) bool {
		return func(id uint32) bool {
			for _, b := range ids {
				if b == id {
					return true
				}
			}
			return false
		}
	}
	ok := Bind{ID: 3, Addr: "127.0.0.1:8080"}
	cases := []struct {
		name  string
		b     Bind
		req   BindRequest
		cause string // "": listen
	}{
		{"allowed", ok, BindRequest{MaxBinds: 4, AllowListen: only(ok.Addr)}, ""},
		{"no policies at all", ok, BindRequest{MaxBinds: 1}, ""},
		{"id 0", Bind{Addr: ok.Addr}, BindRequest{MaxBinds: 4}, "bad-bind"},
		{"unknown protocol", Bind{ID: 3, Proto: 2, Addr: ok.Addr}, BindRequest{MaxBinds: 4}, "bad-bind"},
		{"id already bound", ok, BindRequest{Bound: bound(3), Count: 1, MaxBinds: 4}, "bad-bind"},
		{"max binds", ok, BindRequest{Bound: bound(1, 2), Count: 2, MaxBinds: 2}, "max-binds"},
		{"allow-listen", ok, BindRequest{MaxBinds: 4, AllowListen: only("127.0.0.1:9")}, "allow-listen"},
		{"permit-listen", ok, BindRequest{MaxBinds: 4, AllowListen: only(ok.Addr), PermitListen: only("127.0.0.1:9")}, "permit-listen"},
		{"permit-listen allows", ok, BindRequest{MaxBinds: 4, PermitListen: only(ok.Addr)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := PeerBind(c.b, c.req)
			if v.Cause != c.cause || (v.Refuse != nil) != (c.cause != "") {
				t.Fatalf("verdict %+v, want cause %q", v, c.cause)
			}
			if v.Refuse == nil {
				return
			}
			defer v.Refuse.Release()
			r, err := ParseBindReply(v.Refuse.Bytes())
			if err != nil || r.ID != c.b.ID || r.Code != CodeRefused || r.Text == "" || v.Reason == "" {
				t.Fatalf("refusal %+v, %v (reason %q): want CodeRefused for id %d with a text", r, err, v.Reason, c.b.ID)
			}
		})
	}
}
