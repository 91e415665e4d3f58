package engine

import (
	"errors"
	"strings"
	"testing"
)

type allowOnly string

func (a allowOnly) Allows(t string) bool { return t == string(a) }

func TestOpensPeerOpen(t *testing.T) {
	rev := func(id uint32) (ReverseForward, bool) {
		if id == 3 {
			return ReverseForward{Target: "127.0.0.1:22"}, true
		}
		return ReverseForward{}, false
	}
	req := OpenRequest{Policy: allowOnly("web:80"), Reverse: rev, RecvWindow: 10}
	open := func(kind TargetKind, target string, data string) []byte {
		return AppendOpen(nil, kind, target, []byte(data))
	}
	// The accepter's table: the peer (the dialler) opens odd ids, rising.
	tb := NewOpens(RoleAccepter, 2)
	for _, tc := range []struct {
		name    string
		id      uint32
		payload []byte
		closing bool
		err     error  // a protocol error
		cause   string // a refusal
		code    Code
		target  string
	}{
		{name: "accepted", id: 1, payload: open(TargetDial, "web:80", "GET"), target: "web:80"},
		{name: "even id: ours", id: 2, payload: open(TargetDial, "web:80", ""), err: ErrBadStreamID},
		{name: "id not rising", id: 1, payload: open(TargetDial, "web:80", ""), err: ErrBadStreamID},
		{name: "malformed", id: 3, payload: []byte{0}, err: ErrMalformed},
		{name: "policy", id: 5, payload: open(TargetDial, "db:5432", ""), cause: "allow-target", code: CodeRefused},
		{name: "reverse forward", id: 7, payload: open(TargetForward, "3", ""), target: "127.0.0.1:22"},
		{name: "limit", id: 9, payload: open(TargetDial, "web:80", ""), cause: "max-streams", code: CodeTooManyStream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req.Closing = tc.closing
			v := tb.PeerOpen(tc.id, tc.payload, req)
			switch {
			case tc.err != nil:
				if !errors.Is(v.Err, tc.err) || v.Refuse != nil {
					t.Fatalf("verdict %+v, want protocol error %v", v, tc.err)
				}
			case tc.cause != "":
				if v.Err != nil || v.Refuse == nil || v.Cause != tc.cause {
					t.Fatalf("verdict %+v, want refusal %s", v, tc.cause)
				}
				r, _ := ParseReason(v.Refuse.Bytes())
				if r.Code != tc.code || v.Refuse.Stream != tc.id {
					t.Fatalf("refusal code %v on stream %d, want %v on %d", r.Code, v.Refuse.Stream, tc.code, tc.id)
				}
				v.Refuse.Release()
			default:
				if v.Err != nil || v.Refuse != nil || v.Target != tc.target {
					t.Fatalf("verdict %+v, want accepted to %s", v, tc.target)
				}
			}
		})
	}
	if tb.Open() != 2 {
		t.Fatalf("%d open, want 2", tb.Open())
	}
	tb.Ended(1)
	tb.Ended(1) // twice: once on the wire, once when its actor is gone
	if v := tb.PeerOpen(11, open(TargetDial, "web:80", ""), req); v.Err != nil || v.Refuse != nil || tb.Open() != 2 {
		t.Fatalf("after one ended: %+v, %d open", v, tb.Open())
	}
	for _, tc := range []struct {
		name, payload string
		kind          TargetKind
		closing       bool
		cause         string
	}{
		{"unknown forward", "4", TargetForward, false, "unknown forward"},
		{"target kind", "x", 9, false, "target kind"},
		{"shutting down", "web:80", TargetDial, true, "shutdown"},
		{"first bytes over the window", "web:80", TargetDial, false, "window"},
	} {
		tb := NewOpens(RoleDialer, 10) // the accepter opens even ids
		req.Closing = tc.closing
		data := ""
		if tc.cause == "window" {
			data = strings.Repeat("x", 11)
		}
		v := tb.PeerOpen(2, open(tc.kind, tc.payload, data), req)
		if v.Refuse == nil || v.Cause != tc.cause || tb.Open() != 0 {
			t.Errorf("%s: verdict %+v, %d open", tc.name, v, tb.Open())
		}
		if v.Refuse != nil {
			v.Refuse.Release()
		}
	}
}

func TestOpensNextID(t *testing.T) {
	tb := NewOpens(RoleDialer, 2)
	a, _ := tb.NextID()
	b, _ := tb.NextID()
	if a != 1 || b != 3 {
		t.Fatalf("dialler ids %d, %d; want 1, 3", a, b)
	}
	if _, err := tb.NextID(); !errors.Is(err, ErrStreamLimit) {
		t.Fatalf("third: %v, want ErrStreamLimit", err)
	}
	tb.Ended(a)
	if c, err := tb.NextID(); err != nil || c != 5 {
		t.Fatalf("after one ended: %d, %v", c, err)
	}
	tb = NewOpens(RoleAccepter, 10)
	tb.next = 0xFFFFFFFE
	if _, err := tb.NextID(); !errors.Is(err, ErrIDsExhausted) {
		t.Fatalf("at the last id: %v, want ErrIDsExhausted", err)
	}
}

// FuzzOpens: any OPEN payload on any id yields exactly one verdict, and
// the count never goes past the limit.
func FuzzOpens(f *testing.F) {
	f.Add(uint32(1), AppendOpen(nil, TargetDial, "web:80", []byte("x")))
	f.Add(uint32(3), AppendOpen(nil, TargetForward, "3", nil))
	f.Fuzz(func(t *testing.T, id uint32, p []byte) {
		tb := NewOpens(RoleAccepter, 1)
		req := OpenRequest{Policy: allowOnly("web:80"), RecvWindow: 4,
			Reverse: func(id uint32) (ReverseForward, bool) { return ReverseForward{Target: "a:1"}, id == 3 }}
		for i := range 3 {
			v := tb.PeerOpen(id+uint32(2*i), p, req)
			if (v.Err != nil) == (v.Refuse != nil) && (v.Err != nil || v.Refuse != nil) {
				t.Fatalf("two verdicts: %+v", v)
			}
			if v.Refuse != nil {
				v.Refuse.Release()
			}
			if tb.Open() > 1 {
				t.Fatalf("%d open past a limit of 1", tb.Open())
			}
		}
	})
}
