package bench

// Library benchmarks (issue 18 item 5): sockmux's root package against
// hashicorp/yamux and xtaci/smux used as libraries, each with its default
// configuration, over the same carrier in the same run. Each benchmark
// runs the three as sub-benchmarks, so with -count they interleave:
//
//	go test ./bench -run '^$' -bench 'BenchmarkLib' -count 6 | benchstat -col /lib -

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/hashicorp/yamux"
	"github.com/xtaci/smux"

	"github.com/sockmux/sockmux"
)

// libSession is the little the benchmarks need of a multiplexer.
type libSession interface {
	open() (net.Conn, error)
	accept() (net.Conn, error)
	Close() error
}

type sockmuxLib struct{ s *sockmux.Session }

func (l sockmuxLib) open() (net.Conn, error)   { return l.s.Open(context.Background(), "bench") }
func (l sockmuxLib) accept() (net.Conn, error) { return l.s.AcceptStream() }
func (l sockmuxLib) Close() error              { return l.s.Close() }

type yamuxLib struct{ s *yamux.Session }

func (l yamuxLib) open() (net.Conn, error)   { return l.s.OpenStream() }
func (l yamuxLib) accept() (net.Conn, error) { return l.s.AcceptStream() }
func (l yamuxLib) Close() error              { return l.s.Close() }

type smuxLib struct{ s *smux.Session }

func (l smuxLib) open() (net.Conn, error)   { return l.s.OpenStream() }
func (l smuxLib) accept() (net.Conn, error) { return l.s.AcceptStream() }
func (l smuxLib) Close() error              { return l.s.Close() }

// libs are the multiplexers compared: each makes a client and a server
// over two ends of a carrier.
var libs = []struct {
	name string
	pair func(c, s net.Conn) (client, server libSession, err error)
}{
	{"sockmux", func(c, s net.Conn) (libSession, libSession, error) {
		type res struct {
			s   *sockmux.Session
			err error
		}
		ch := make(chan res, 1)
		go func() {
			srv, err := sockmux.Server(s, nil)
			ch <- res{srv, err}
		}()
		cli, err := sockmux.Client(c, nil)
		r := <-ch
		if err != nil || r.err != nil {
			return nil, nil, firstErr(err, r.err)
		}
		return sockmuxLib{cli}, sockmuxLib{r.s}, nil
	}},
	{"yamux", func(c, s net.Conn) (libSession, libSession, error) {
		cli, err := yamux.Client(c, yamuxConfig())
		if err != nil {
			return nil, nil, err
		}
		srv, err := yamux.Server(s, yamuxConfig())
		return yamuxLib{cli}, yamuxLib{srv}, err
	}},
	{"smux", func(c, s net.Conn) (libSession, libSession, error) {
		cli, err := smux.Client(c, smux.DefaultConfig())
		if err != nil {
			return nil, nil, err
		}
		srv, err := smux.Server(s, smux.DefaultConfig())
		return smuxLib{cli}, smuxLib{srv}, err
	}},
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// libCarrier makes a carrier connection pair.
type libCarrier func(b *testing.B) (net.Conn, net.Conn)

func libPipe(*testing.B) (net.Conn, net.Conn) { return net.Pipe() }

func libTCP(b *testing.B) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-ch
	if s == nil {
		b.Fatal("accept failed")
	}
	return c, s
}

// eachLib runs body as a sub-benchmark per multiplexer, named lib=NAME,
// with a client and a server session over a fresh carrier pair.
func eachLib(b *testing.B, carrier libCarrier, body func(b *testing.B, client, server libSession)) {
	for _, l := range libs {
		b.Run("lib="+l.name, func(b *testing.B) {
			c, s := carrier(b)
			client, server, err := l.pair(c, s)
			if err != nil {
				b.Fatal(err)
			}
			defer server.Close()
			defer client.Close()
			body(b, client, server)
		})
	}
}

// BenchmarkLibOpen is the stream open rate: per op, a stream opened, one
// byte each way (the server accepts it, reads the byte, answers), and
// both ends closed. Over TCP.
func BenchmarkLibOpen(b *testing.B) {
	eachLib(b, libTCP, func(b *testing.B, client, server libSession) {
		go func() {
			one := make([]byte, 1)
			for {
				st, err := server.accept()
				if err != nil {
					return
				}
				if _, err := io.ReadFull(st, one); err == nil {
					st.Write(one)
				}
				st.Close()
			}
		}()
		one := []byte{1}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			st, err := client.open()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Write(one); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(st, one); err != nil {
				b.Fatal(err)
			}
			st.Close()
		}
	})
}

// libBulk moves b.N MiB one way over one stream, to a reader that
// discards it, and waits until it has all arrived.
func libBulk(b *testing.B, carrier libCarrier) {
	eachLib(b, carrier, func(b *testing.B, client, server libSession) {
		got := make(chan int64, 1)
		go func() {
			st, err := server.accept()
			if err != nil {
				got <- -1
				return
			}
			buf := make([]byte, 64<<10)
			var n int64
			for {
				k, err := st.Read(buf)
				n += int64(k)
				if err != nil {
					break
				}
			}
			st.Close()
			got <- n
		}()
		st, err := client.open()
		if err != nil {
			b.Fatal(err)
		}
		chunk := make([]byte, 64<<10)
		b.SetBytes(unit)
		b.ResetTimer()
		for range b.N {
			for k := 0; k < unit; k += len(chunk) {
				if _, err := st.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		}
		st.Close() // yamux and smux: a FIN; sockmux: a FIN too
		if n := <-got; n != int64(b.N)*unit {
			b.Fatalf("the reader got %d bytes of %d", n, int64(b.N)*unit)
		}
		b.StopTimer()
	})
}

// BenchmarkLibBulkPipe is one stream's throughput over a net.Pipe.
func BenchmarkLibBulkPipe(b *testing.B) { libBulk(b, libPipe) }

// BenchmarkLibBulkTCP is one stream's throughput over loopback TCP.
func BenchmarkLibBulkTCP(b *testing.B) { libBulk(b, libTCP) }

// BenchmarkLibRoundTrip64 is a 64-byte request echoed back, one at a
// time, on one stream over loopback TCP.
func BenchmarkLibRoundTrip64(b *testing.B) {
	eachLib(b, libTCP, func(b *testing.B, client, server libSession) {
		go func() {
			st, err := server.accept()
			if err != nil {
				return
			}
			io.Copy(st, st)
			st.Close()
		}()
		st, err := client.open()
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		msg := make([]byte, 64)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := st.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(st, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// libSessionPairs is how many session pairs BenchmarkLibSessions holds at
// once.
const libSessionPairs = 200

// BenchmarkLibSessions is what a session pair costs to hold: per op,
// libSessionPairs client and server pairs are made over net.Pipes (which
// have no goroutines of their own) and then closed. It reports, per pair
// held, the heap (after a GC) and the goroutines they added; ns/op is the
// time to make and close them all.
func BenchmarkLibSessions(b *testing.B) {
	for _, l := range libs {
		b.Run("lib="+l.name, func(b *testing.B) {
			var heap, goroutines float64
			pairs := make([]libSession, 0, 2*libSessionPairs)
			for range b.N {
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				heap0, g0 := ms.HeapAlloc, runtime.NumGoroutine()
				for range libSessionPairs {
					c, s := net.Pipe()
					client, server, err := l.pair(c, s)
					if err != nil {
						b.Fatal(err)
					}
					pairs = append(pairs, client, server)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&ms)
				heap += float64(int64(ms.HeapAlloc)-int64(heap0)) / libSessionPairs
				goroutines += float64(runtime.NumGoroutine()-g0) / libSessionPairs
				b.StartTimer()
				for _, p := range pairs {
					p.Close()
				}
				pairs = pairs[:0]
			}
			b.ReportMetric(heap/float64(b.N), "heap-B/pair")
			b.ReportMetric(goroutines/float64(b.N), "goroutines/pair")
		})
	}
}
