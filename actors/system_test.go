package actors

import (
	"reflect"
	"runtime"
	"testing"

	"github.com/sockmux/sockmux/internal/testkit"
)

// TestSharedWorkerFunc checks that the name leak checks ignore is the
// shared system's workers' function.
func TestSharedWorkerFunc(t *testing.T) {
	got := runtime.FuncForPC(reflect.ValueOf(sharedWorker).Pointer()).Name()
	if got != testkit.SharedWorkerFunc {
		t.Fatalf("the shared workers run %s; testkit.SharedWorkerFunc is %s", got, testkit.SharedWorkerFunc)
	}
}
