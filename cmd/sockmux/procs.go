package main

// --procs: how many threads run the daemon's Go code at once
// (GOMAXPROCS).
//
// One link's data path runs on one goroutine at a time (its strand: the
// socket read, the actors' mailboxes and the carrier write of a message
// happen in one go), so a process that holds a link or two gains little
// from more processors, and pays for them: Go keeps threads spinning for
// work on the idle ones and wakes them across cores. Measured on a 2-core
// machine beside the applications the tunnel serves (BENCHMARKS.md,
// "One processor for an edge"), one processor moved 10–20% more bytes per
// CPU-second in bulk and halved the threads' sleeps per request under
// load. So connect and stdio, an edge's commands, default to 1; listen,
// a hub holding many links that do run in parallel, to every CPU (the
// runtime's own default). A GOMAXPROCS in the environment wins over a
// default, --procs over both; `sockmux run` keeps the runtime's default.

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/pflag"
)

// addProcsFlag defines --procs with the command's default (0: every CPU).
func (o *options) addProcsFlag(f *pflag.FlagSet, def int) {
	f.IntVar(&o.procs, "procs", def,
		"`N` threads running the daemon's code at once (GOMAXPROCS; 0: one per CPU); a GOMAXPROCS in the environment overrides the default; raise it for a link striped over fast carriers")
	o.procsFlag = f.Lookup("procs")
}

// applyProcs sets GOMAXPROCS as --procs asks.
func (o *options) applyProcs() error {
	if o.procsFlag == nil {
		return nil // a command without the flag
	}
	if o.procs < 0 {
		return flagErr("procs", fmt.Errorf("%w: bad --procs %d: want 0 (one per CPU) or more", errUsage, o.procs))
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); set && !o.procsFlag.Changed {
		return nil
	}
	n := o.procs
	if n == 0 {
		n = runtime.NumCPU()
	}
	runtime.GOMAXPROCS(n)
	return nil
}
