package main

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/spf13/pflag"
)

// TestProcsFlag: --procs sets GOMAXPROCS; its default does too unless the
// environment names one; a negative count is a usage error.
func TestProcsFlag(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	cases := []struct {
		name string
		def  int
		args []string
		env  string // GOMAXPROCS in the environment ("" unset)
		want int    // GOMAXPROCS after; 0: the runtime's own (unchanged)
	}{
		{"connect's default", 1, nil, "", 1},
		{"listen's default: every CPU", 0, nil, "", runtime.NumCPU()},
		{"the environment wins over the default", 1, nil, "3", 0},
		{"the flag wins over the environment", 1, []string{"--procs", "2"}, "3", 2},
		{"0 asked: every CPU", 1, []string{"--procs", "0"}, "", runtime.NumCPU()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", c.env) // restored after the case
			if c.env == "" {
				os.Unsetenv("GOMAXPROCS")
			}
			runtime.GOMAXPROCS(5) // a value none of the cases sets
			var o options
			f := pflag.NewFlagSet("x", pflag.ContinueOnError)
			o.addProcsFlag(f, c.def)
			if err := f.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			if err := o.applyProcs(); err != nil {
				t.Fatal(err)
			}
			want := c.want
			if want == 0 {
				want = 5
			}
			if got := runtime.GOMAXPROCS(0); got != want {
				t.Fatalf("GOMAXPROCS %d, want %d", got, want)
			}
		})
	}
	var o options
	f := pflag.NewFlagSet("x", pflag.ContinueOnError)
	o.addProcsFlag(f, 1)
	if err := f.Parse([]string{"--procs", "-1"}); err != nil {
		t.Fatal(err)
	}
	if err := o.applyProcs(); !errors.Is(err, errUsage) {
		t.Fatalf("--procs -1: %v, want a usage error", err)
	}
}
