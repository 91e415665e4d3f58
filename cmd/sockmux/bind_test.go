package main

import (
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestBindCarrier: a link whose carriers leave from 127.0.0.2 and
// 127.0.0.3 (two uplinks) carries a checksummed transfer over both, each
// carrying part of it; a bind the host does not have fails at once.
func TestBindCarrier(t *testing.T) {
	testkit.CheckLeaks(t)
	echo, link, fwd := testkit.Echo(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	control := filepath.Join(t.TempDir(), "ctl.sock")
	d := startDaemon(t, fmt.Sprintf(`control = %q
[[link]]
name = "hub"
listen = %q
[[link]]
name = "edge"
connect = %q
bind-carrier = ["127.0.0.2", "127.0.0.3"]
local = [%q]
`, control, link, link, fwd+":"+echo))
	waitLog(t, d.log, `msg="carrier joined the link" link=edge`)
	conn, err := net.Dial("tcp", fwd)
	if err != nil {
		t.Fatal(err)
	}
	testkit.EchoRoundTrip(t, conn, 21, 64<<20)
	conn.Close()
	edge := linkOf(t, d.status(t), "edge")
	if len(edge.Status.Links) != 1 {
		t.Fatalf("edge has %d links", len(edge.Status.Links))
	}
	var from []string
	for _, c := range edge.Status.Links[0].PerCarrier {
		host, _, _ := net.SplitHostPort(c.Local)
		from = append(from, host)
		if c.BytesSent == 0 {
			t.Errorf("the carrier from %s carried nothing of the transfer", c.Local)
		}
	}
	sort.Strings(from)
	if strings.Join(from, ",") != "127.0.0.2,127.0.0.3" {
		t.Fatalf("carriers left from %v, want one from each bind (--carriers defaults to their number)", from)
	}

	var errOut strings.Builder
	if code := run(t.Context(), []string{"connect", "--bind-carrier", "192.0.2.77", link}, &strings.Builder{}, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), `"192.0.2.77": this host has no such address`) {
		t.Fatalf("a bind the host lacks: exit %d: %s", code, errOut.String())
	}
}
