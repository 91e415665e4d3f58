package carriers

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestUnsupported: what a carrier that cannot work on an OS fails with
// matches both sentinels and names the feature and the OS.
func TestUnsupported(t *testing.T) {
	err := unsupported("fifo carrier (POSIX named pipes)")
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("%v is not ErrUnsupported", err)
	}
	for _, want := range []string{"fifo carrier", runtime.GOOS} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %q", err, want)
		}
	}
	// Here (Linux, where the tests run) every carrier is available.
	if err := fifosAvailable(); err != nil {
		t.Fatalf("fifosAvailable: %v", err)
	}
}
