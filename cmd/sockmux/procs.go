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
// load. So connect and stdio, an edge's commands, default to 1. listen,
// a hub whose links do run in parallel, follows its links (followLinks):
// one processor per link up, at least one and at most one per CPU, so a
// hub with one edge runs as an edge does (BENCHMARKS.md, "A hub's
// processors follow its links": a keyed stream 16–26% faster and 16–17%
// less CPU per byte than with every CPU) and a hub with many uses every
// CPU. A GOMAXPROCS in the environment wins over a default, --procs over
// both (0: every CPU, fixed); `sockmux run` keeps the runtime's default.

import (
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/spf13/pflag"

	"github.com/sockmux/sockmux"
)

// procsFollow is addProcsFlag's default for a command whose processors
// follow its links (listen).
const procsFollow = -1

// addProcsFlag defines --procs with the command's default (0: every CPU;
// procsFollow: one per link up, up to every CPU).
func (o *options) addProcsFlag(f *pflag.FlagSet, def int) {
	usage := "`N` threads running the daemon's code at once (GOMAXPROCS; 0: one per CPU); a GOMAXPROCS in the environment overrides the default; raise it for a link striped over fast carriers"
	if def == procsFollow {
		o.procsFollow = true
		def = 0
		usage = "`N` threads running the daemon's code at once (GOMAXPROCS; 0: one per CPU); by default one per link up, up to one per CPU; a GOMAXPROCS in the environment overrides the default"
	}
	f.IntVar(&o.procs, "procs", def, usage)
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
	if o.procsFollow && !o.procsFlag.Changed {
		o.following = true
		runtime.GOMAXPROCS(1) // no link is up yet
		return nil
	}
	n := o.procs
	if n == 0 {
		n = runtime.NumCPU()
	}
	runtime.GOMAXPROCS(n)
	return nil
}

// followLinks makes GOMAXPROCS follow the links up, when applyProcs left
// that to it: one processor per link up, at least one and at most one per
// CPU. It wraps cfg.OnLink; a change of GOMAXPROCS stops the world for a
// moment, which happens only when a link goes up or down.
func (o *options) followLinks(cfg *sockmux.PeerConfig) {
	if !o.following {
		return
	}
	f := &procsFollower{max: runtime.NumCPU(), set: 1}
	next := cfg.OnLink
	cfg.OnLink = func(ev sockmux.LinkEvent) {
		f.link(ev.Up)
		if next != nil {
			next(ev)
		}
	}
}

// procsFollower counts the links up and sets GOMAXPROCS by them.
type procsFollower struct {
	mu       sync.Mutex
	up       int
	max, set int
}

func (f *procsFollower) link(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if up {
		f.up++
	} else if f.up > 0 {
		f.up--
	}
	if n := min(max(f.up, 1), f.max); n != f.set {
		f.set = n
		runtime.GOMAXPROCS(n)
	}
}
