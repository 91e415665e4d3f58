package netem

import (
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkPath pushes one TCP stream across a path for each case and
// reports its throughput as a share of the path's rate (x-rate), with
// the packets the path lost or dropped: what the emulator itself costs.
func BenchmarkPath(b *testing.B) {
	for _, c := range []struct {
		name string
		p    Path
	}{
		{"20MBps-5ms", Path{Rate: 20 * MB, Delay: 2500 * time.Microsecond}},
		{"5MBps-20ms", Path{Rate: 5 * MB, Delay: 10 * time.Millisecond}},
		{"100Mbit-50ms-1%loss", Path{Rate: 100 * Mbit, Delay: 25 * time.Millisecond, Loss: 0.01}},
	} {
		b.Run(c.name, func(b *testing.B) {
			n := newNet(b, c.p)
			ln, err := n.Listen("tcp", n.Far().String()+":0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			got := make(chan int64, 1)
			go func() {
				s, err := ln.Accept()
				if err != nil {
					got <- 0
					return
				}
				defer s.Close()
				k, _ := io.Copy(io.Discard, s)
				got <- k
			}()
			conn, err := n.Dial(context.Background(), "tcp", n.Source(0), ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			const unit = 1 << 20
			buf := make([]byte, unit)
			b.SetBytes(unit)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := conn.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			conn.Close()
			k := <-got
			el := time.Since(start)
			if k != int64(b.N)*unit {
				b.Fatalf("received %d bytes of %d", k, int64(b.N)*unit)
			}
			b.ReportMetric(float64(k)/el.Seconds()/float64(c.p.Rate), "x-rate")
			st, _ := n.Stats(0)
			b.ReportMetric(float64(st.Lost), "lost")
			b.ReportMetric(float64(st.Overflow), "overflow")
		})
	}
}
