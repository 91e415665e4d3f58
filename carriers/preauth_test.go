package carriers

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockmux/sockmux/internal/acceptloop"
	"github.com/sockmux/sockmux/internal/preauth"
	"github.com/sockmux/sockmux/internal/testkit"
)

// waitServerClosed fails unless the server closes c by deadline, a
// generous one: a limit for a broken test, not a timing assertion.
func waitServerClosed(t testing.TB, c net.Conn, deadline time.Time, what string) {
	t.Helper()
	_ = c.SetReadDeadline(deadline)
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("%s: the server did not close it: %v", what, err)
	}
}

// TestTLSSilentFlood: a real peer gets its TLS handshake while 300 silent
// connections sit on the listener, with a first-byte timeout so long that
// only evicting idle connections can make room for it. The oldest silent
// connections beyond the cap (of the gate, or of the one source they all
// share) are the ones closed; none times out.
func TestTLSSilentFlood(t *testing.T) {
	const silent = 300
	cases := []struct {
		name      string
		perSource int
		room      int // silent connections the gate keeps
	}{
		{"the total cap", preauth.DefaultMaxPending, preauth.DefaultMaxPending},
		{"the per-source cap", 0, preauth.DefaultMaxPerSource},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := TLSConfig{StateDir: t.TempDir()}
			fp, err := cfg.ServerFingerprint()
			if err != nil {
				t.Fatal(err)
			}
			ln := listen(t, "tls://127.0.0.1:0", WithTLS(cfg), WithLogger(nil),
				WithPreauth(preauth.Config{MaxPerSource: tc.perSource, FirstByteTimeout: time.Minute, Timeout: time.Minute}))
			conns := testkit.SilentConns(t, ln.Addr().String(), silent)
			// Once the oldest beyond the room are closed, all 300 have
			// been admitted.
			deadline := time.Now().Add(20 * time.Second)
			for i, c := range conns[:silent-tc.room] {
				waitServerClosed(t, c, deadline, fmt.Sprint("silent connection ", i))
			}
			// The real peer's one Dial, with its own handshake
			// timeout, succeeds while the rest are still there.
			c, s := dialPair(t, ln, mustDialer(t, "tls://"+ln.Addr().String(), WithTLS(TLSConfig{Fingerprint: fp})))
			roundTrip(t, c, s, "past 300 silent connections")
			// It took the slot of the oldest silent one left.
			waitServerClosed(t, conns[silent-tc.room], deadline, "the oldest silent connection left")
			st := ln.(*tlsListener).gate.Stats()
			if want := int64(silent - tc.room + 1); st.Evicted != want || st.FirstByteTimeouts != 0 || st.Timeouts != 0 || st.Refused != 0 {
				t.Fatalf("gate %+v; want %d evicted and nothing timed out or refused", st, want)
			}
		})
	}
}

// flakyListener returns the errors queued in errs before accepting.
type flakyListener struct {
	net.Listener
	errs chan error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	select {
	case err := <-l.errs:
		return nil, err
	default:
		return l.Listener.Accept()
	}
}

// TestTLSAcceptBackoff: errors of an exhausted system (out of descriptors,
// buffers, memory; a connection aborted) do not end a TLS listener: it
// backs off, logs the burst once when it starts and once, with its count,
// when an accept succeeds again, and then serves as before.
func TestTLSAcceptBackoff(t *testing.T) {
	cfg := TLSConfig{StateDir: t.TempDir()}
	fp, err := cfg.ServerFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := cfg.serverCertificate()
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errnos := []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM}
	fl := &flakyListener{Listener: inner, errs: make(chan error, len(errnos))}
	for _, e := range errnos {
		fl.errs <- &net.OpError{Op: "accept", Net: "tcp", Addr: inner.Addr(), Err: os.NewSyscallError("accept", e)}
	}
	rec := newRecorder(64)
	o := newOptions([]Option{WithLogger(rec.logger())})
	ln := newTLSListener(fl, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, o)
	t.Cleanup(func() { ln.Close() })

	c, s := dialPair(t, ln, mustDialer(t, "tls://"+inner.Addr().String(), WithTLS(TLSConfig{Fingerprint: fp})))
	roundTrip(t, c, s, "after a burst of accept errors")
	var lines []slog.Record
	for _, r := range recordsOf(rec) {
		if r.Message == acceptloop.MsgFailing || r.Message == acceptloop.MsgRecovered {
			lines = append(lines, r)
		}
	}
	if len(lines) != 2 || !strings.Contains(attr(lines[0], "err"), "too many open files") ||
		lines[1].Message != acceptloop.MsgRecovered || attr(lines[1], "failures") != "5" {
		t.Fatalf("logged %d lines about the burst: %v; want a warning naming EMFILE, then one counting 5 failures", len(lines), lines)
	}
}

// recordsOf is what rec has kept.
func recordsOf(rec *recorder) []slog.Record {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]slog.Record(nil), rec.records...)
}
