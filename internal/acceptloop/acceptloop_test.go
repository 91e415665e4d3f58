package acceptloop

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/ratelog"
	"github.com/sockmux/sockmux/internal/testkit"
)

// count is how many records of log have message msg.
func count(log *testkit.Recorder, msg string) int {
	n := 0
	for _, r := range log.Records() {
		if r.Msg == msg {
			n++
		}
	}
	return n
}

// serve runs Run on ln until the test ends, handing the connections it
// accepts to the returned channel.
func serve(t *testing.T, ln net.Listener, o Options) <-chan net.Conn {
	t.Helper()
	conns := make(chan net.Conn, 16)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		Run(ln, o, func(c net.Conn) { conns <- c })
	}()
	t.Cleanup(func() {
		ln.Close()
		<-ended
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	return conns
}

// accept dials ln and waits for Run to hand over the connection.
func accept(t *testing.T, ln net.Listener, conns <-chan net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-conns:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop accepted nothing after the burst")
	}
}

// TestBurstRecovers: each error accept(2) gives a flooded or starved
// process is ridden out; the loop accepts again afterwards, and the burst
// is logged twice, not once per failure: at its start with the error, at
// its end with the count.
func TestBurstRecovers(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM} {
		t.Run(errno.Error(), func(t *testing.T) {
			testkit.CheckLeaks(t)
			log := testkit.NewRecorder()
			ln := testkit.NewFailingListener(t)
			const burst = 7
			ln.Fail(burst, errno)
			conns := serve(t, ln, Options{Log: slog.New(log), Attrs: []any{"accepting", "test"}, MinDelay: time.Microsecond, MaxDelay: time.Millisecond})
			accept(t, ln, conns)
			accept(t, ln, conns) // a second, to show the loop goes on
			if n := count(log, MsgFailing); n != 1 {
				t.Fatalf("%d %q lines for one burst, want 1", n, MsgFailing)
			}
			r := log.Wait(t, time.Second, MsgRecovered, func(r testkit.Record) bool { return r.Msg == MsgRecovered })
			if got := r.Attrs["failures"]; got != int64(burst) {
				t.Fatalf("the burst's end counts %v failures, want %d", got, burst)
			}
			if r.Attrs["accepting"] != "test" {
				t.Fatalf("the line does not name the listener: %v", r.Attrs)
			}
			first := log.Records()[0]
			if err, _ := first.Attrs["err"].(error); !errors.Is(err, errno) {
				t.Fatalf("the burst's first line carries %v, want %v", first.Attrs["err"], errno)
			}
			if count(log, MsgRecovered) != 1 {
				t.Fatalf("the burst's end was logged %d times", count(log, MsgRecovered))
			}
		})
	}
}

// TestBackoffDoubles: the waits double from MinDelay to MaxDelay and go
// back to MinDelay after a success, as net/http's Server does.
func TestBackoffDoubles(t *testing.T) {
	ln := testkit.NewFailingListener(t)
	l := New(ln, Options{})
	var got []time.Duration
	for range 10 {
		got = append(got, l.failed(syscall.EMFILE))
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	l.succeeded()
	if d := l.failed(syscall.EMFILE); d != MinDelay {
		t.Fatalf("first wait after a success %v, want %v", d, MinDelay)
	}
}

// TestStopEndsBackoff: closing Stop, Done or the listener ends a backoff
// wait at once (the waits here are an hour), and a logged burst that the
// end cuts short still has its count logged.
func TestStopEndsBackoff(t *testing.T) {
	for _, which := range []string{"stop", "done", "close"} {
		t.Run(which, func(t *testing.T) {
			testkit.CheckLeaks(t)
			log := testkit.NewRecorder()
			ln := testkit.NewFailingListener(t)
			ln.Always(syscall.EMFILE)
			stop, done := make(chan struct{}), make(chan struct{})
			var wrapped *Listener
			o := Options{Log: slog.New(log), Stop: stop, Done: done, MinDelay: time.Hour, MaxDelay: time.Hour}
			wrapped = New(ln, o)
			ended := make(chan error, 1)
			go func() {
				_, err := wrapped.Accept()
				ended <- err
			}()
			<-ln.Calls // the first failure
			// Logged and counted: the loop now waits an hour.
			log.Wait(t, 10*time.Second, MsgFailing, func(r testkit.Record) bool { return r.Msg == MsgFailing })
			switch which {
			case "stop":
				close(stop)
			case "done":
				close(done)
			case "close":
				wrapped.Close()
			}
			select {
			case err := <-ended:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("Accept ended with %v, want net.ErrClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the backoff wait did not end")
			}
			r := log.Wait(t, time.Second, MsgStopped, func(r testkit.Record) bool { return r.Msg == MsgStopped })
			if r.Attrs["failures"] != int64(1) {
				t.Fatalf("%q counts %v failures, want 1", MsgStopped, r.Attrs["failures"])
			}
		})
	}
}

// TestClosedEnds: a closed listener ends Run without a line: closing is
// how every listener ends, not a failure.
func TestClosedEnds(t *testing.T) {
	testkit.CheckLeaks(t)
	log := testkit.NewRecorder()
	ln := testkit.NewFailingListener(t)
	ln.Close()
	Run(ln, Options{Log: slog.New(log)}, func(c net.Conn) { c.Close() })
	if recs := log.Records(); len(recs) != 0 {
		t.Fatalf("a closed listener logged %v", recs)
	}
}

// TestLimitHoldsBackBursts: with a limiter, the first line of a burst that
// follows another within the interval is left out, and so is its end:
// bursts a peer can cause at will make a bounded number of lines; the next
// line written counts those left out.
func TestLimitHoldsBackBursts(t *testing.T) {
	testkit.CheckLeaks(t)
	log := testkit.NewRecorder()
	ln := testkit.NewFailingListener(t)
	conns := serve(t, ln, Options{Log: slog.New(log), Limit: ratelog.New(time.Hour), MinDelay: time.Microsecond, MaxDelay: time.Microsecond})
	for range 5 {
		ln.Fail(3, syscall.EMFILE)
		accept(t, ln, conns)
	}
	if n, m := count(log, MsgFailing), count(log, MsgRecovered); n != 1 || m != 1 {
		t.Fatalf("five bursts within the interval logged %d starts and %d ends, want 1 and 1", n, m)
	}
}

// TestHTTPServerSurvivesENOMEM: net/http's Server gives up on an accept
// error it does not take as temporary (ENOBUFS, ENOMEM); over a Listener
// it never sees one, and serves again after the burst.
func TestHTTPServerSurvivesENOMEM(t *testing.T) {
	testkit.CheckLeaks(t)
	ln := testkit.NewFailingListener(t)
	ln.Fail(3, syscall.ENOMEM)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(New(ln, Options{MinDelay: time.Microsecond})) }()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatalf("no answer after the burst: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("answer %q", body)
	}
	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve ended with %v, want ErrServerClosed", err)
	}
}
