package testkit

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool returns the path of an outside program a test uses (curl,
// socat...). Without it the test is skipped with a message, or fails where
// SOCKMUX_REQUIRE_TOOLS=1 (CI sets it, and installs them).
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("SOCKMUX_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s is required (SOCKMUX_REQUIRE_TOOLS=1) but not found: %v", name, err)
	}
	t.Skipf("%s not found; install it to run this test (.ci/run does)", name)
	return ""
}
