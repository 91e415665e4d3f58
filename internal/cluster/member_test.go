package cluster

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
)

// waitLimit bounds how long a test waits for the directory to settle; it
// is not a timing assertion, only how long to wait before giving up.
const waitLimit = 30 * time.Second

// testLogger logs to the test's output when -v asks for it.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
}

// start starts a member with cfg's name and bind defaulted. Members are
// closed at cleanup all at once: each Close takes protoactor's seconds of
// handing over.
func start(t testing.TB, cfg Config) *Member {
	t.Helper()
	needNoRace(t)
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Bind == "" {
		cfg.Bind = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 2 * time.Second
	}
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	fleetOf(t).add(m)
	return m
}

// fleet is a test's members, closed together at its end.
type fleet struct {
	mu sync.Mutex
	ms []*Member
}

var fleets sync.Map // testing.TB → *fleet

func fleetOf(t testing.TB) *fleet {
	f, loaded := fleets.LoadOrStore(t, &fleet{})
	if !loaded {
		t.Cleanup(func() {
			fleets.Delete(t)
			f := f.(*fleet)
			var wg sync.WaitGroup
			for _, m := range f.ms {
				wg.Go(func() { m.Close() })
			}
			wg.Wait()
		})
	}
	return f.(*fleet)
}

func (f *fleet) add(m *Member) {
	f.mu.Lock()
	f.ms = append(f.ms, m)
	f.mu.Unlock()
}

// startTest starts n members on protoactor's in-memory test provider.
func startTest(t testing.TB, agent *test.InMemAgent, n int) []*Member {
	t.Helper()
	ms := make([]*Member, n)
	for i := range ms {
		ms[i] = start(t, Config{ClusterProvider: test.NewTestProvider(agent), Link: fmt.Sprintf("127.0.0.1:%d", 7000+i)})
	}
	return ms
}

// waitOn waits until a value from ch (a Watch or WatchHubs channel)
// satisfies ok, and returns it.
func waitOn[T any](t testing.TB, ch <-chan T, what string, ok func(T) bool) T {
	t.Helper()
	limit := time.After(waitLimit)
	var last T
	for {
		select {
		case v, open := <-ch:
			if !open {
				t.Fatalf("%s: the member closed", what)
			}
			if ok(v) {
				return v
			}
			last = v
		case <-limit:
			t.Fatalf("%s: still %+v after %v", what, last, waitLimit)
		}
	}
}

// waitFor waits until m's directory satisfies ok, and returns it.
func waitFor(t testing.TB, m *Member, what string, ok func([]Entry) bool) []Entry {
	t.Helper()
	ch, stop := m.Watch()
	defer stop()
	return waitOn(t, ch, what+" (directory of "+m.ID()+")", ok)
}

// waitHubs waits until m counts exactly the hubs of ms as members.
func waitHubs(t testing.TB, m *Member, ms ...*Member) {
	t.Helper()
	want := make([]string, len(ms))
	for i, o := range ms {
		want[i] = o.ID()
	}
	slices.Sort(want)
	ch, stop := m.WatchHubs()
	defer stop()
	waitOn(t, ch, "hubs of "+m.ID(), func(hubs []string) bool { return slices.Equal(hubs, want) })
}

// holds is a predicate: the directory has exactly these (bind, hub) rows.
func holds(rows ...Entry) func([]Entry) bool {
	return func(es []Entry) bool {
		if len(es) != len(rows) {
			return false
		}
		for _, r := range rows {
			if !slices.ContainsFunc(es, func(e Entry) bool { return e.Bind == r.Bind && e.Hub == r.Hub }) {
				return false
			}
		}
		return true
	}
}

func TestRegisterSeenOnEveryMember(t *testing.T) {
	t.Parallel()
	ms := startTest(t, test.NewInMemAgent(), 3)
	if err := ms[1].Register(Entry{Bind: "tcp/*:8080", Pool: "web", Members: 2}); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		es := waitFor(t, m, "register on one", holds(Entry{Bind: "tcp/*:8080", Hub: ms[1].ID()}))
		want := Entry{Bind: "tcp/*:8080", Pool: "web", Hub: ms[1].ID(), Link: "127.0.0.1:7001", Members: 2}
		if es[0] != want {
			t.Errorf("member %s sees %+v, want %+v", m.ID(), es[0], want)
		}
	}
	if err := ms[1].Unregister("tcp/*:8080"); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		waitFor(t, m, "unregister", holds())
	}
}

func TestEntriesOfHubThatLeftAreDropped(t *testing.T) {
	t.Parallel()
	ms := startTest(t, test.NewInMemAgent(), 3)
	for i, m := range ms {
		if err := m.Register(Entry{Bind: fmt.Sprintf("tcp/*:%d", 8080+i)}); err != nil {
			t.Fatal(err)
		}
	}
	all := holds(Entry{Bind: "tcp/*:8080", Hub: ms[0].ID()}, Entry{Bind: "tcp/*:8081", Hub: ms[1].ID()}, Entry{Bind: "tcp/*:8082", Hub: ms[2].ID()})
	for _, m := range ms {
		waitFor(t, m, "all registered", all)
	}
	ms[1].Close()
	rest := holds(Entry{Bind: "tcp/*:8080", Hub: ms[0].ID()}, Entry{Bind: "tcp/*:8082", Hub: ms[2].ID()})
	for _, m := range []*Member{ms[0], ms[2]} {
		waitFor(t, m, "after a hub left", rest)
	}
	if err := ms[1].Register(Entry{Bind: "tcp/*:9"}); err != ErrClosed {
		t.Errorf("Register after Close: %v, want ErrClosed", err)
	}
}

func TestLateMemberSeesExistingEntries(t *testing.T) {
	t.Parallel()
	agent := test.NewInMemAgent()
	first := startTest(t, agent, 2)
	if err := first[0].Register(Entry{Bind: "udp/*:5353"}); err != nil {
		t.Fatal(err)
	}
	want := holds(Entry{Bind: "udp/*:5353", Hub: first[0].ID()})
	waitFor(t, first[1], "before the late member", want)
	late := startTest(t, agent, 1)[0]
	waitFor(t, late, "late member", want)
	// The membership change may have moved the grain: the directory is
	// whole wherever it now lives.
	waitFor(t, first[1], "after the late member joined", want)
}

func TestRegisterRefusesBadEntries(t *testing.T) {
	t.Parallel()
	m := startTest(t, test.NewInMemAgent(), 1)[0]
	long := string(make([]byte, maxField+1))
	for _, e := range []Entry{
		{},
		{Bind: long},
		{Bind: "tcp/*:1", Pool: long},
		{Bind: "tcp/*:1", Members: -1},
		{Bind: "tcp/*:1", Hub: "10.9.9.9:1"},
	} {
		if err := m.Register(e); err == nil {
			t.Errorf("Register(%+.60v) = nil, want an error", e)
		}
	}
}
