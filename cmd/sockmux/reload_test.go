package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestReloadAppliesLive: a reload that changes a forward, a -R, a policy
// and a key of one running link applies them all at once; a key that
// needs a restart is named, `sockmux reload` exits 1, and it stays named
// on the next reload until the file agrees with what runs.
func TestReloadAppliesLive(t *testing.T) {
	testkit.CheckLeaks(t)
	one, two := testkit.Greeter(t, "one"), testkit.Greeter(t, "two")
	link, a, b, r := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	control := filepath.Join(t.TempDir(), "ctl.sock")
	conf := func(reloaded bool, keepalive string) string {
		allow, locals, remotes := fmt.Sprintf("%q", one), fmt.Sprintf("%q", a+":"+one), ""
		if reloaded {
			allow += fmt.Sprintf(", %q", two)
			locals += fmt.Sprintf(", %q", b+":"+two)
			remotes = fmt.Sprintf("remote = [%q]\n", r+":"+two)
		}
		return fmt.Sprintf("control = %q\n[[link]]\nname = \"west\"\nlisten = %q\nallow-target = [%s]\n"+
			"[[link]]\nname = \"east\"\nconnect = %q\nlocal = [%s]\n%skeepalive = %q\n",
			control, link, allow, link, locals, remotes, keepalive)
	}
	d := startDaemon(t, conf(false, "15s"))
	waitLog(t, d.log, `msg="link up" link=east`)
	if got := testkit.Greeting(t, a); got != "one" {
		t.Fatalf("before the reload, the forward reached %q", got)
	}
	reload := func(want int) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"reload", "--control", control}, &out, &errOut); code != want {
			t.Fatalf("sockmux reload: exit %d, want %d:\n%s%s", code, want, out.String(), errOut.String())
		}
		return out.String()
	}

	// One reload: a forward and a -R added, the policy widened, and a key
	// that needs a restart.
	os.WriteFile(d.path, []byte(conf(true, "20s")), 0o600)
	out := reload(1)
	for _, want := range []string{
		`applied: link "east": forward ` + b + ` added`,
		`applied: link "east": -R: 1 added, 0 removed, 0 retargeted`,
		`applied: link "west": policies and key for new streams and handshakes`,
		`not applied: link "east": keepalive changed: needs a restart`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("reload printed no %q:\n%s", want, out)
		}
	}
	if got := testkit.Greeting(t, b); got != "two" {
		t.Errorf("the added forward, through the widened policy, reached %q", got)
	}
	waitLog(t, d.log, `msg="reverse forward listening" link=east`)
	if got := testkit.Greeting(t, r); got != "two" {
		t.Errorf("the added -R reached %q", got)
	}
	// What needs a restart stays named: it is still not what runs.
	if out := reload(1); !strings.Contains(out, `not applied: link "east": keepalive changed`) || strings.Contains("\n"+out, "\napplied:") {
		t.Errorf("the second reload:\n%s", out)
	}
	// The file back to what runs: nothing to do, exit 0.
	os.WriteFile(d.path, []byte(conf(true, "15s")), 0o600)
	if out := reload(0); !strings.Contains(out, "reloaded: nothing changed") {
		t.Errorf("a reload with nothing to do:\n%s", out)
	}
	// The -R and the policy go again.
	os.WriteFile(d.path, []byte(conf(false, "15s")), 0o600)
	if out := reload(0); !strings.Contains(out, `applied: link "east": -R: 0 added, 1 removed, 0 retargeted`) {
		t.Errorf("a reload removing the -R:\n%s", out)
	}
	waitLog(t, d.log, `msg="reverse forward closed at the peer's request" link=west`)
	if c, err := net.Dial("tcp", r); err == nil {
		c.Close()
		t.Error("the removed -R still accepts")
	}
	// A file mid-edit that does not parse: status still reaches the
	// daemon, which runs on what it read before.
	os.WriteFile(d.path, []byte(conf(false, "15s")+"broken = \n"), 0o600)
	var st, stErr bytes.Buffer
	if code := run(context.Background(), []string{"status", "-c", d.path}, &st, &stErr); code != 0 || !strings.Contains(st.String(), "link east") {
		t.Errorf("status -c with a file that does not parse: exit %d\n%s%s", code, st.String(), stErr.String())
	}
	// A forward whose port is taken failed: the error says so, and does
	// not send the user to a restart that would not free the port.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	os.WriteFile(d.path, []byte(strings.Replace(conf(false, "15s"), "local = [", fmt.Sprintf("local = [%q, ", taken.Addr().String()+":"+one), 1)), 0o600)
	var out2, errOut bytes.Buffer
	if code := run(context.Background(), []string{"reload", "--control", control}, &out2, &errOut); code != 1 ||
		!strings.Contains(out2.String(), "failed: ") || !strings.Contains(errOut.String(), "1 change(s) failed") || strings.Contains(errOut.String(), "restart") {
		t.Errorf("a reload adding a forward on a taken port: exit %d\n%s%s", code, out2.String(), errOut.String())
	}
}
