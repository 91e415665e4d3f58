package actors

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/acceptloop"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// spawnForward runs l as one of n's forwards, so n's Close stops it.
func spawnForward(t testing.TB, n *Node, l *listenerActor) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	pid := n.env.sys.Root.Spawn(n.env.props(func() actor.Actor { return l }))
	n.addForwardPID(pid, l.fwd.Bind, l.ln.Addr())
}

// onlyLink is n's one Link actor, waiting for it to be there.
func onlyLink(t testing.TB, n *Node) *actor.PID {
	t.Helper()
	n.env.mu.Lock()
	defer n.env.mu.Unlock()
	if len(n.env.linkPIDs) != 1 {
		t.Fatalf("%d links, want 1", len(n.env.linkPIDs))
	}
	for _, pid := range n.env.linkPIDs {
		return pid
	}
	return nil
}

// burstLines checks that log has exactly one start and one end of a
// burst for the listener named what, the end counting want failures.
func burstLines(t testing.TB, log *testkit.Recorder, what string, want int) {
	t.Helper()
	of := func(msg string) func(testkit.Record) bool {
		return func(r testkit.Record) bool { return r.Msg == msg && r.Attrs["accepting"] == what }
	}
	end := log.Wait(t, 10*time.Second, what+": "+acceptloop.MsgRecovered, of(acceptloop.MsgRecovered))
	if got := end.Attrs["failures"]; got != int64(want) {
		t.Errorf("%s: the burst's end counts %v failures, want %d", what, got, want)
	}
	starts, ends := 0, 0
	for _, r := range log.Records() {
		switch {
		case of(acceptloop.MsgFailing)(r):
			starts++
			if err, _ := r.Attrs["err"].(error); !errors.Is(err, syscall.EMFILE) {
				t.Errorf("%s: the burst's first line carries %v, want EMFILE", what, r.Attrs["err"])
			}
		case of(acceptloop.MsgRecovered)(r):
			ends++
		}
	}
	if starts != 1 || ends != 1 {
		t.Errorf("%s: a burst of %d failures logged %d starts and %d ends, want one each", what, want, starts, ends)
	}
}

// TestAcceptSurvivesEMFILE: the link listener, a forward and two reverse
// forwards each see a burst of EMFILE, as a process out of descriptors
// does, and each accepts again afterwards: the link comes up, and a
// transfer passes through every forward. Each burst is logged once at its
// start and once at its end, with its count; the reverse forwards' two
// bursts, once between them. (Before, each loop returned on the first
// error, and the node was alive but deaf.)
func TestAcceptSurvivesEMFILE(t *testing.T) {
	testkit.CheckLeaks(t)
	const burst = 6
	echo := testkit.Echo(t)
	log := testkit.NewRecorder()
	a, err := NewNode(Config{Logger: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	linkLn := testkit.NewFailingListener(t)
	linkLn.Fail(burst, syscall.EMFILE)
	a.Serve(linkLn)

	up := make(chan LinkEvent, 4)
	b, err := NewNode(Config{Logger: slog.New(slog.DiscardHandler), OnLink: func(ev LinkEvent) { up <- ev },
		Remotes: []forward.Forward{{Bind: "127.0.0.1:0", Target: echo}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	d, err := carriers.NewDialer(linkLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b.Connect(d)
	select {
	case ev := <-up:
		if !ev.Up {
			t.Fatalf("link down: %v", ev.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no link after the link listener's burst")
	}
	burstLines(t, log, "links", burst)

	// A forward, and two reverse forwards of the link (B's -R number 1),
	// on listeners that fail the same way.
	fwdLn, revLn, revLn2 := testkit.NewFailingListener(t), testkit.NewFailingListener(t), testkit.NewFailingListener(t)
	for _, ln := range []*testkit.FailingListener{fwdLn, revLn, revLn2} {
		ln.Fail(burst, syscall.EMFILE)
	}
	spawnForward(t, a, newListener(a.env, fwdLn, forward.Forward{Bind: fwdLn.Addr().String(), Target: echo}))
	spawnForward(t, a, newReverseListener(a.env, revLn, onlyLink(t, a), 1))
	spawnForward(t, a, newReverseListener(a.env, revLn2, onlyLink(t, a), 1))
	for i, ln := range []net.Listener{fwdLn, revLn, revLn2} {
		c := testkit.Dial(t, ln.Addr())
		// A deaf listener still completes the dial (the kernel's
		// backlog does); the deadline makes it fail the test, not hang it.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		testkit.EchoRoundTrip(t, c, uint64(i+1), 256<<10)
	}
	burstLines(t, log, "forward", burst)
	// The peer picks the reverse forwards' addresses, and may hold many:
	// their bursts share one cause of the rate limiter, so the second
	// listener's is left out of the log.
	burstLines(t, log, "reverse forward", burst)
}

// TestCloseEndsAcceptBackoff: a node whose link listener never stops
// failing closes at once, though its accept loop is in a one-second
// backoff wait, and leaves no goroutine behind; the burst, cut short, is
// logged with its count.
func TestCloseEndsAcceptBackoff(t *testing.T) {
	testkit.CheckLeaks(t)
	log := testkit.NewRecorder()
	n, err := NewNode(Config{Logger: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	ln := testkit.NewFailingListener(t)
	ln.Always(syscall.EMFILE)
	n.Serve(ln)
	// After the ninth failure the wait is MaxDelay: 5 ms doubled eight
	// times is past a second.
	for range 9 {
		select {
		case <-ln.Calls:
		case <-time.After(10 * time.Second):
			t.Fatal("the accept loop stopped retrying")
		}
	}
	start := time.Now()
	n.Close()
	if took := time.Since(start); took > acceptloop.MaxDelay/2 {
		t.Errorf("Close took %v with the accept loop in its backoff, want it to end the wait at once", took)
	}
	r := log.Wait(t, time.Second, acceptloop.MsgStopped, func(r testkit.Record) bool { return r.Msg == acceptloop.MsgStopped })
	// Calls hears of a failure just before the loop counts it, so Close
	// may find 8 counted or 9.
	if got := r.Attrs["failures"]; got != int64(8) && got != int64(9) {
		t.Errorf("%q counts %v failures, want 8 or 9", acceptloop.MsgStopped, got)
	}
	starts := 0
	for _, r := range log.Records() {
		if r.Msg == acceptloop.MsgFailing {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("%d %q lines for one burst, want 1", starts, acceptloop.MsgFailing)
	}
}
