package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/sockmux/sockmux/actors"
)

// The helper roles of the idle-links workload (IdleLinks): "edges", a
// process holding many edge links to one hub, and "linkhub", a hub that
// runs in a helper process (yamux's, and sockmux's Node as `sockmux
// listen` runs it, for a count of its heap, stacks and goroutines).
//
//	edges SYSTEM HUB N KEEPALIVE KEYFILE   says "ready N" once N links are up
//	linkhub SYSTEM KEEPALIVE KEYFILE       says "ready ADDR"
//
// KEEPALIVE is a duration, 0 for the system's default; KEYFILE a base64
// pre-shared key's file, or "-" for none. Both answer "links" ("links UP
// DOWNS": links up now, and how many went down since ready; the hub's
// DOWNS is 0) and "mem" ("mem HEAP STACK RSS GOROUTINES", after a GC;
// with HelperProfileEnv set, a heap profile is written there each time);
// with HelperCPUProfileEnv set, "cpu-start" and "cpu-stop" profile the
// CPU between them into ROLE-cpu.pprof there.
var linkRoles = map[string]func(args []string, in io.Reader, out io.Writer) error{
	"edges":   runEdges,
	"linkhub": runLinkHub,
}

// HelperCPUProfileEnv names the environment variable that, set to a
// directory, makes a helper hub of the idle-links workload profile its CPU
// over the idle window (hub-cpu.pprof there).
const HelperCPUProfileEnv = "SOCKMUX_BENCH_CPUPROFILE"

// edgeSources are the loopback addresses edge links are dialled from, in
// turn: the hub's gate admits at most 32 pending handshakes from one
// source, and one source has 28,000 ephemeral ports at most.
const edgeSources = 8

// edgeDialing is how many of one process's links may be dialling or in
// their handshake at once. Two processes of 64 over 8 sources are 16 per
// source, half of what the hub's gate admits from one: at its bound the
// gate evicts connections whose HELLO it has not read yet, and a dialler
// that read the hub's HELLO already takes its link for up (see
// BENCHMARKS.md, "A hub holding 10,000 idle links").
const edgeDialing = 64

// edgeSetup bounds how long an edges helper may take to bring its links up.
const edgeSetup = 3 * time.Minute

// linkCounter counts the links up and the downs since ready.
type linkCounter struct {
	up, downs atomic.Int64
	ready     atomic.Bool
}

func (c *linkCounter) event(up bool) {
	if up {
		c.up.Add(1)
		return
	}
	c.up.Add(-1)
	if c.ready.Load() {
		c.downs.Add(1)
	}
}

// roleArgs are a link role's arguments: what it runs, and how.
type roleArgs struct {
	system    string
	keepalive time.Duration
	key       []byte
}

// parseRoleArgs reads SYSTEM, KEEPALIVE and KEYFILE from args at i, i+k
// and i+k+1.
func parseRoleArgs(system, keepalive, keyFile string) (roleArgs, error) {
	a := roleArgs{system: system}
	var err error
	if a.keepalive, err = time.ParseDuration(keepalive); err != nil {
		return a, fmt.Errorf("keepalive %q: %w", keepalive, err)
	}
	if keyFile != "-" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return a, err
		}
		a.key = []byte(strings.TrimSpace(string(b))) // as sockmux --key-file takes it
	}
	return a, nil
}

// runEdges opens n links to the hub and holds them, idle, until in ends.
func runEdges(args []string, in io.Reader, out io.Writer) error {
	if len(args) != 5 {
		return fmt.Errorf("edges: want SYSTEM HUB N KEEPALIVE KEYFILE, got %q", args)
	}
	a, err := parseRoleArgs(args[0], args[3], args[4])
	if err != nil {
		return err
	}
	hub := args[1]
	n, err := strconv.Atoi(args[2])
	if err != nil || n <= 0 {
		return fmt.Errorf("edges: bad count %q", args[2])
	}
	if err := RaiseFileLimit(uint64(n + 256)); err != nil {
		return err
	}
	var (
		c      linkCounter
		failed <-chan error // a sockmux link's permanent failure
	)
	switch a.system {
	case "sockmux":
		failed, err = sockmuxEdges(hub, n, a, &c)
	case "yamux":
		err = yamuxEdges(hub, n, a, &c)
	default:
		err = fmt.Errorf("edges: unknown system %q", a.system)
	}
	if err != nil {
		return err
	}
	deadline := time.Now().Add(edgeSetup)
	for c.up.Load() < int64(n) {
		select {
		case err := <-failed:
			return fmt.Errorf("edges: %w", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("edges: %d of %d links up after %v", c.up.Load(), n, edgeSetup)
		}
	}
	c.ready.Store(true)
	fmt.Fprintf(out, "ready %d\n", n)
	return answer(in, out, "edges", &c)
}

// answer answers a link role's questions until in ends.
func answer(in io.Reader, out io.Writer, role string, c *linkCounter) error {
	profiles := heapProfiles{dir: os.Getenv(HelperProfileEnv)}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "links":
			fmt.Fprintf(out, "links %d %d\n", c.up.Load(), c.downs.Load())
		case "mem":
			m := MeasureMemory()
			if err := profiles.write(role); err != nil {
				return err
			}
			fmt.Fprintf(out, "mem %d %d %d %d\n", m.Heap, m.Stack, m.RSS, runtime.NumGoroutine())
		case "cpu-start":
			if err := startCPUProfile(filepath.Join(os.Getenv(HelperCPUProfileEnv), role+"-cpu.pprof")); err != nil {
				return err
			}
			fmt.Fprintln(out, "cpu-start")
		case "cpu-stop":
			pprof.StopCPUProfile()
			fmt.Fprintln(out, "cpu-stop")
		default:
			fmt.Fprintf(out, "error unknown question %q\n", sc.Text())
		}
	}
	return nil
}

// startCPUProfile starts profiling the CPU into path.
func startCPUProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return pprof.StartCPUProfile(f) // the file is written to until the process ends
}

// edgeDial dials the hub from the i-th source address.
func edgeDial(ctx context.Context, hub string, i int) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%edgeSources))}}
	return d.DialContext(ctx, "tcp", hub)
}

// sockmuxEdges opens n links to the hub on one Node, as n `sockmux
// connect` processes would each open one: the same link actors,
// handshake and keepalive, without n actor systems (a library Session
// runs a Node of its own, megabytes each).
func sockmuxEdges(hub string, n int, a roleArgs, c *linkCounter) (<-chan error, error) {
	slots := make(chan struct{}, edgeDialing)
	dialers := make([]*edgeDialer, n)
	byName := make(map[string]*edgeDialer, n)
	for i := range dialers {
		d := &edgeDialer{hub: hub, i: i, name: fmt.Sprintf("%s#%d", hub, i), slots: slots}
		dialers[i], byName[d.name] = d, d
	}
	// FailFast: a wrong key, say, ends the run at once with its reason.
	node, err := actors.NewNode(actors.Config{Logger: helperLog("edges"), Keepalive: a.keepalive, Key: a.key, FailFast: true, OnLink: func(ev actors.LinkEvent) {
		if ev.Up {
			if d := byName[ev.Peer]; d != nil {
				d.release()
			}
		}
		if !ev.Up && c.ready.Load() {
			fmt.Fprintf(os.Stderr, "edges: link %s down: %v\n", ev.Peer, ev.Err)
		}
		c.event(ev.Up)
	}})
	if err != nil {
		return nil, err
	}
	for _, d := range dialers {
		node.Connect(d)
	}
	return node.Failed(), nil
}

// edgeDialer dials one edge link's carrier, holding one of the process's
// dialling slots from the dial until the link is up (or for 10 s).
type edgeDialer struct {
	hub   string
	i     int
	name  string
	slots chan struct{}
	held  sync.Mutex
	slot  *sync.Once // releases the slot the last dial took
}

func (d *edgeDialer) Dial(ctx context.Context) (net.Conn, error) {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	once := new(sync.Once)
	d.held.Lock()
	d.slot = once
	d.held.Unlock()
	time.AfterFunc(10*time.Second, func() { once.Do(func() { <-d.slots }) })
	conn, err := edgeDial(ctx, d.hub, d.i)
	if err != nil {
		d.release()
	}
	return conn, err
}

// release gives back the slot the last dial took, once.
func (d *edgeDialer) release() {
	d.held.Lock()
	once := d.slot
	d.held.Unlock()
	if once != nil {
		once.Do(func() { <-d.slots })
	}
}

func (d *edgeDialer) String() string { return d.name }

// yamuxEdges opens n yamux client sessions to the hub, with yamux's
// default configuration (its keepalive every 30 s), KEEPALIVE if set.
func yamuxEdges(hub string, n int, a roleArgs, c *linkCounter) error {
	cfg := yamuxConfig()
	if a.keepalive > 0 {
		cfg.KeepAliveInterval = a.keepalive
	}
	work := make(chan int)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range edgeDialing {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				conn, err := edgeDial(context.Background(), hub, i)
				if err == nil {
					var s *yamux.Session
					if s, err = yamux.Client(conn, cfg); err == nil {
						c.event(true)
						go func() {
							<-s.CloseChan()
							c.event(false)
						}()
					}
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := failed.Load(); err != nil {
		return fmt.Errorf("yamux edge: %w", *err)
	}
	return nil
}

// runLinkHub runs a hub for edge links and holds them until in ends.
func runLinkHub(args []string, in io.Reader, out io.Writer) error {
	if len(args) != 3 {
		return fmt.Errorf("linkhub: want SYSTEM KEEPALIVE KEYFILE, got %q", args)
	}
	if os.Getenv(HelperProfileEnv) != "" {
		runtime.MemProfileRate = 1 // every allocation, before the first
	}
	a, err := parseRoleArgs(args[0], args[1], args[2])
	if err != nil {
		return err
	}
	if err := RaiseFileLimit(DefaultIdleLinks + 256); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var c linkCounter
	switch a.system {
	case "sockmux":
		// As `sockmux listen` runs it: Serve on a TCP listener.
		node, err := actors.NewNode(actors.Config{Logger: helperLog("linkhub"), Keepalive: a.keepalive, Key: a.key,
			OnLink: func(ev actors.LinkEvent) {
				if !ev.Up {
					fmt.Fprintf(os.Stderr, "linkhub: link %s down: %v\n", ev.Peer, ev.Err)
				}
				c.event(ev.Up)
			}})
		if err != nil {
			return err
		}
		go node.Serve(ln)
	case "yamux":
		cfg := yamuxConfig()
		if a.keepalive > 0 {
			cfg.KeepAliveInterval = a.keepalive
		}
		go yamuxHub(ln, cfg, &c)
	default:
		return fmt.Errorf("linkhub: unknown system %q", a.system)
	}
	c.ready.Store(true)
	fmt.Fprintf(out, "ready %s\n", ln.Addr())
	return answer(in, out, "hub", &c)
}

// yamuxHub serves a yamux session on each connection ln accepts, taking
// (and closing) the streams its edge opens, as a hub would serve them.
func yamuxHub(ln net.Listener, cfg *yamux.Config, c *linkCounter) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := yamux.Server(conn, cfg)
		if err != nil {
			conn.Close()
			continue
		}
		c.event(true)
		go func() {
			for {
				st, err := s.Accept()
				if err != nil {
					break
				}
				st.Close()
			}
			c.event(false)
		}()
	}
}

// helperLog is a link role's logger: warnings and errors, on stderr.
func helperLog(role string) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("helper", role)
}
