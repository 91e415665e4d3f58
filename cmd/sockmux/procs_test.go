package main

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/spf13/pflag"

	"github.com/sockmux/sockmux"
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
		{"listen's default: one, until links come up", procsFollow, nil, "", 1},
		{"listen asked 0: every CPU", procsFollow, []string{"--procs", "0"}, "", runtime.NumCPU()},
		{"the environment wins over listen's default", procsFollow, nil, "3", 0},
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

// TestProcsFollowLinks: listen's processors follow its links up, one per
// link, at least one and at most one per CPU; a choice of --procs, or a
// GOMAXPROCS in the environment, is left alone.
func TestProcsFollowLinks(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	runtime.GOMAXPROCS(1) // as applyProcs leaves it
	f := &procsFollower{max: 3, set: 1}
	for _, step := range []struct {
		up   bool
		want int
	}{{true, 1}, {true, 2}, {true, 3}, {true, 3}, {false, 3}, {false, 2}, {false, 1}, {false, 1}, {false, 1}} {
		f.link(step.up)
		if got := runtime.GOMAXPROCS(0); got != step.want {
			t.Fatalf("after a link %s: GOMAXPROCS %d, want %d (links up %d)", map[bool]string{true: "up", false: "down"}[step.up], got, step.want, f.up)
		}
	}
	for _, c := range []struct {
		name string
		args []string
		env  string
	}{{"--procs chosen", []string{"--procs", "2"}, ""}, {"GOMAXPROCS set", nil, "2"}} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", c.env)
			if c.env == "" {
				os.Unsetenv("GOMAXPROCS")
			}
			var o options
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			o.addProcsFlag(fs, procsFollow)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			if err := o.applyProcs(); err != nil {
				t.Fatal(err)
			}
			var cfg sockmux.PeerConfig
			o.followLinks(&cfg)
			if cfg.OnLink != nil {
				t.Fatal("the processors follow the links although the count was chosen")
			}
		})
	}
}
